from __future__ import annotations

import pytest

from streams.core.definitions import expressions as ex


@pytest.mark.parametrize("text", [
    "today <= decision_date <= today + 6 months",
    "not (a >= 1 or b is none) and c is not none",
    "last_touch > now - 36 hours",
    "first_contact <= 2026-02-28 + 1 year",
    "amount >= 1500.50",
])
def test_parse_and_render_round_trip(text):
    tree = ex.parse(text)
    assert ex.parse(ex.render(tree)).__class__ is tree.__class__
    assert ex.render(ex.parse(ex.render(tree))) == ex.render(tree)


def test_chained_comparison_keeps_all_operands():
    tree = ex.parse("today <= decision_date <= today + 6 months")
    assert isinstance(tree, ex.Compare)
    assert tree.ops == ["<=", "<="] and len(tree.operands) == 3
    assert isinstance(tree.operands[2], ex.Arith)


def test_precedence_not_binds_tighter_than_and_than_or():
    tree = ex.parse("a >= 1 or not b >= 1 and c >= 1")
    assert isinstance(tree, ex.BoolOp) and tree.op == "or"
    right = tree.items[1]
    assert isinstance(right, ex.BoolOp) and right.op == "and"
    assert isinstance(right.items[0], ex.Not)


def test_singular_and_plural_units():
    one = ex.parse("1 month")
    many = ex.parse("6 months")
    assert isinstance(one, ex.DurationLit) and one.duration.unit == "months"
    assert isinstance(many, ex.DurationLit) and many.duration.months == 6


def test_keywords_inside_names_are_names():
    assert ex.names_in(ex.parse("nowhere >= 1 and today_ish >= 2")) == ["nowhere", "today_ish"]


@pytest.mark.parametrize(("text", "words"), [
    ("a >=", "ends too early"),
    ("a > $", "`$` is not part of the language"),
    ("x < 2026-02-29", "2026-02-29 is not a real calendar date"),
    ("x < today + 1.5 days", "whole number"),
    ("", "empty"),
])
def test_parse_errors_are_readable(text, words):
    with pytest.raises(ex.ExpressionError, match=words.replace("$", r"\$")):
        ex.parse(text)
