"""Every loader rule of DESIGN §4, each reported with its line and a readable sentence."""

from __future__ import annotations

import pytest

from streams.core.calendar import MS_PER_DAY
from streams.core.definitions.loader import DefinitionsError, load_file, load_text
from streams.core.definitions.model import Type
from streams.core.lead_history import RETENTION_MS
from tests.unit.core.definitions_helpers import DEFAULT_FACTS, HEADER, definitions_yaml

GOOD_STAGES = [("cold", "interest_signals == 0"), ("warm", "interest_signals >= 1")]


def problems_of(text: str) -> list[tuple[int, str]]:
    with pytest.raises(DefinitionsError) as caught:
        load_text(text, "test.yaml")
    return [(p.line, p.message) for p in caught.value.problems]


def test_default_file_loads_with_the_agreed_semantics():
    d = load_file("definitions/lead-stages.yaml")
    assert d.version == 1 and d.stage_names == ("cold", "warm", "hot")
    assert d.facts["interest_signals"].within is not None
    assert str(d.facts["interest_signals"].within) == "90 days"
    assert d.facts["decision_date"].type is Type.DATE
    assert d.conditions["deciding_soon"].source == "today <= decision_date <= today + 6 months"
    assert d.handoff is not None and d.handoff.stage == "hot"
    assert str(d.handoff.follow_up_within) == "2 days"


def test_unknown_key_names_the_key_and_line():
    text = definitions_yaml(GOOD_STAGES) + "stagez: []\n"
    [(line, message)] = problems_of(text)
    assert "`stagez` is not something a definitions file can contain" in message
    assert line == text.splitlines().index("stagez: []") + 1


def test_unknown_key_inside_a_fact():
    text = definitions_yaml(GOOD_STAGES).replace("    count: [CONTACTED]\n",
                                                 "    count: [CONTACTED]\n    weight: 2\n")
    [(line, message)] = problems_of(text)
    assert "`weight` is not something fact `contacts` can contain" in message
    assert text.splitlines()[line - 1].strip() == "weight: 2"


def test_missing_version():
    text = definitions_yaml(GOOD_STAGES).replace("version: 1\n", "")
    [(_, message)] = problems_of(text)
    assert "no `version`" in message


@pytest.mark.parametrize("team", ["marketing", "sales"])
def test_both_teams_must_sign(team):
    text = definitions_yaml(GOOD_STAGES).replace(
        f"  {team}: Head of {team.title()}\n", "")
    [(_, message)] = problems_of(text)
    assert message == f"both teams must sign: `agreed_by.{team}` is missing"


def test_unknown_activity_with_suggestion():
    text = definitions_yaml(GOOD_STAGES).replace("[CONTACTED]", "[CONTACTD]")
    [(line, message)] = problems_of(text)
    assert "`CONTACTD`, which is not an activity in the event schema" in message
    assert "did you mean CONTACTED" in message
    assert "CONTACTD" in text.splitlines()[line - 1]


def test_unknown_field():
    text = definitions_yaml(GOOD_STAGES).replace("decision_by", "decided_by")
    [(_, message)] = problems_of(text)
    assert "`decided_by`, which is not a field of LeadActivity" in message


def test_opinion_activity_is_rejected_as_subjective():
    facts = DEFAULT_FACTS + "  rep_opinion:\n    latest: STAGE_ASSESSED.assessed_stage\n"
    [(_, message)] = problems_of(definitions_yaml(GOOD_STAGES, facts=facts))
    assert message == ("fact `rep_opinion` reads STAGE_ASSESSED, which is a team's opinion, "
                       "not an objective fact")


@pytest.mark.parametrize("field", ["team", "assessed_stage", "reason", "attributes"])
def test_opinion_and_free_text_fields_are_rejected(field):
    facts = DEFAULT_FACTS + f"  why:\n    latest: DEAL_LOST.{field}\n"
    [(_, message)] = problems_of(definitions_yaml(GOOD_STAGES, facts=facts))
    assert f"fact `why` reads `{field}`" in message and "not an objective fact" in message


def test_unknown_name_in_a_rule_with_suggestion():
    [(_, message)] = problems_of(definitions_yaml(
        [("cold", "interest_signal == 0"), ("warm", "interest_signals >= 1")]))
    assert message == ("stage `cold`: `interest_signal` is not a fact or condition "
                       "(did you mean `interest_signals`?)")


@pytest.mark.parametrize(("rule", "words"), [
    ("contacts >= 2026-01-01", "compares a count with a date"),
    ("contacts + 2 days >= 1", "adds a duration to a count"),
    ("decision_date == none", "write `decision_date is none`"),
    ("contacts is none", "always has a value"),
    ("contacts and interest_signals >= 1", "`contacts` is a count, not a true/false condition"),
    ("contacts", "a rule must be true or false"),
    ("decision_date <= today + decision_date", "only a duration"),
    ("decision_date < 6 months", "compares a duration"),
])
def test_type_errors(rule, words):
    [(_, message)] = problems_of(definitions_yaml([("cold", rule), ("warm", "contacts >= 1")]))
    assert words in message, message


def test_duplicate_stage_names():
    problems = problems_of(definitions_yaml([("cold", "contacts >= 1"), ("cold", "contacts >= 2")]))
    assert [m for _, m in problems] == ["stage `cold` is defined twice (first on line 16)"]


def test_no_stages():
    text = HEADER + DEFAULT_FACTS + "population: contacts >= 1\nstages: []\n"
    [(_, message)] = problems_of(text)
    assert "there are no stages" in message


def test_condition_cycles_are_reported():
    problems = problems_of(definitions_yaml(GOOD_STAGES, conditions={"a": "b", "b": "a"}))
    assert {m for _, m in problems} == {
        "condition `a` depends on itself through other conditions",
        "condition `b` depends on itself through other conditions"}


@pytest.mark.parametrize("window", ["2 years", "13 months", "53 weeks", "367 days", "8785 hours"])
def test_window_longer_than_retention_is_rejected(window):
    text = definitions_yaml(GOOD_STAGES).replace("within: 90 days", f"within: {window}")
    [(_, message)] = problems_of(text)
    assert "at most 1 year (12 months, 52 weeks or 366 days)" in message


@pytest.mark.parametrize("window", ["1 year", "12 months", "11 months", "52 weeks", "365 days",
                                    "366 days", "8784 hours"])
def test_a_window_of_up_to_a_year_is_accepted(window):
    """What the refusal above promises: a year, however it is spelled, is accepted."""
    definitions = load_text(definitions_yaml(GOOD_STAGES).replace("within: 90 days",
                                                                  f"within: {window}"))
    (within,) = [f.within for f in definitions.facts.values() if f.within is not None]
    # a window never reaches past the activity times a lead's history keeps
    assert within.max_days * MS_PER_DAY < RETENTION_MS


def test_all_problems_are_reported_at_once_in_line_order():
    text = definitions_yaml([("cold", "contcts >= 1"), ("cold", "contacts >= 1")]).replace(
        "version: 1\n", "version: -3\n").replace("[CONTACTED]", "[CONTACTED, NOPE]")
    problems = problems_of(text)
    assert len(problems) >= 3
    assert [line for line, _ in problems] == sorted(line for line, _ in problems)
    joined = " | ".join(m for _, m in problems)
    assert "`version` must be a whole number from 1 to 2147483647" in joined
    assert "`NOPE`" in joined and "defined twice" in joined


def test_a_broken_fact_does_not_cascade_into_unknown_name_errors():
    text = definitions_yaml(GOOD_STAGES).replace("[DETAILS_PROVIDED,", "[DETAILS_PROVIDD,")
    problems = problems_of(text)
    assert len(problems) == 1 and "DETAILS_PROVIDD" in problems[0][1]


def test_invalid_yaml_has_a_line():
    [(line, message)] = problems_of("version: 1\nfacts: [\n")
    assert "not valid YAML" in message and line >= 2
