"""The compiled default definitions at date boundaries, windows, month ends and leap days."""

from __future__ import annotations

import pytest

from streams.core.calendar import MS_PER_DAY, add_months, parse_date
from streams.core.definitions.compiler import compile_definitions
from streams.core.definitions.loader import load_file, load_text
from streams.core.lead_history import LeadHistory

DEFAULT = compile_definitions(load_file("definitions/lead-stages.yaml"))
NOON = 12 * 3_600_000


def at(day: str, ms_of_day: int = NOON) -> int:
    return parse_date(day) * MS_PER_DAY + ms_of_day


def lead(*events: tuple[str, int, dict]) -> LeadHistory:
    h = LeadHistory()
    for i, (activity, when, extra) in enumerate(events):
        h.apply({"event_id": f"e{i}", "occurred_at": when, "activity": activity, **extra})
    return h


def stage(h: LeadHistory, now: int) -> str | None:
    return DEFAULT.evaluate(h, now)[0]


def decided(day: str, now: int) -> LeadHistory:
    return lead(("CONTACTED", now - 5 * MS_PER_DAY, {}),
                ("DECISION_TIMELINE_PROVIDED", now - MS_PER_DAY, {"decision_by": parse_date(day)}))


def test_not_in_population_without_contact():
    now = at("2026-11-26")
    assert stage(lead(("PRICING_VIEWED", now, {})), now) is None


@pytest.mark.parametrize(("today", "decision", "expected"), [
    ("2026-11-26", "2026-11-26", "hot"),    # deciding today
    ("2026-11-26", "2026-11-25", "cold"),   # the date passed yesterday
    ("2026-11-26", "2027-05-26", "hot"),    # exactly today + 6 months
    ("2026-11-26", "2027-05-27", "cold"),   # one day beyond
    ("2026-08-31", "2027-02-28", "hot"),    # month end clamps: Aug 31 + 6 months = Feb 28
    ("2026-08-31", "2027-03-01", "cold"),
    ("2027-08-29", "2028-02-29", "hot"),    # leap day is today + 6 months
    ("2027-08-31", "2028-02-29", "hot"),    # clamps to the leap day
    ("2027-08-31", "2028-03-01", "cold"),
    ("2028-02-29", "2028-08-29", "hot"),
])
def test_deciding_soon_boundaries(today, decision, expected):
    now = at(today)
    assert stage(decided(decision, now), now) == expected


def test_deciding_soon_holds_all_day_at_both_ends():
    h = decided("2027-05-26", at("2026-11-26"))
    assert stage(h, at("2026-11-26", 0)) == "hot"
    assert stage(h, at("2026-11-26", MS_PER_DAY - 1)) == "hot"
    assert stage(h, at("2026-11-27", 0)) == "hot"  # 2027-05-27 is also within 6 months now


def test_interest_window_is_open_at_the_far_end():
    now = at("2026-11-26")
    base = ("CONTACTED", now - 200 * MS_PER_DAY, {})
    assert stage(lead(base, ("DEMO_REQUESTED", now - 90 * MS_PER_DAY, {})), now) == "cold"
    assert stage(lead(base, ("DEMO_REQUESTED", now - 90 * MS_PER_DAY + 1, {})), now) == "warm"


def test_time_alone_moves_warm_to_cold():
    t0 = at("2026-11-26")
    h = lead(("CONTACTED", t0, {}), ("PRICING_VIEWED", t0, {}))
    assert stage(h, t0) == "warm"
    assert stage(h, t0 + 90 * MS_PER_DAY - 1) == "warm"
    assert stage(h, t0 + 90 * MS_PER_DAY) == "cold"


def test_time_alone_makes_a_far_decision_hot():
    t0 = at("2026-11-26")
    h = decided("2027-12-01", t0)
    assert stage(h, t0) == "cold"
    becomes_hot = add_months(parse_date("2027-12-01"), -6) * MS_PER_DAY
    assert stage(h, becomes_hot - 1) == "cold"
    assert stage(h, becomes_hot) == "hot"


def test_an_older_timeline_arriving_late_does_not_replace_the_newer():
    now = at("2026-11-26")
    h = lead(("CONTACTED", now - 9 * MS_PER_DAY, {}),
             ("DECISION_TIMELINE_PROVIDED", now - MS_PER_DAY,
              {"decision_by": parse_date("2027-01-15")}),
             ("DECISION_TIMELINE_PROVIDED", now - 5 * MS_PER_DAY,     # older, arrives later
              {"decision_by": parse_date("2028-06-01")}))
    assert stage(h, now) == "hot"
    assert DEFAULT.evaluate(h, now)[1][2] == parse_date("2027-01-15")


def test_reason_names_the_rule_and_the_values():
    now = at("2026-11-26")
    name, facts = DEFAULT.evaluate(decided("2027-03-01", now), now)
    reason = DEFAULT.reason(name, facts, now)
    assert reason.startswith("hot: deciding_soon")
    assert "decision_date = 2027-03-01" in reason and "today = 2026-11-26" in reason
    assert DEFAULT.format_facts(facts) == {"contacts": "1", "interest_signals": "0",
                                           "decision_date": "2027-03-01"}


def test_a_change_shows_in_its_reason_the_values_it_shows_in_its_facts():
    """The stage machine formats the values once and hands them to `reason`: the sentence reads
    the very strings of the change's `facts`, and a caller without them gets the same text."""
    now = at("2026-11-26")
    name, facts = DEFAULT.evaluate(decided("2027-03-01", now), now)
    shown = DEFAULT.format_facts(facts)
    assert DEFAULT.reason(name, facts, now, shown) == DEFAULT.reason(name, facts, now)
    marked = {**shown, "decision_date": "MARK"}
    assert "decision_date = MARK" in DEFAULT.reason(name, facts, now, marked)


def test_a_change_shows_each_type_of_value_as_the_language_writes_it():
    """Dates as days, timestamps as ISO-8601 UTC, decimals as numbers, counts and texts as they
    are, and a value nobody recorded as `none`."""
    compiled = compile_definitions(load_text("""
version: 1
effective: 2026-12-01
agreed_by: {marketing: M, sales: S}
properties:
  segment: {type: text, from: CRM, values: [smb, enterprise]}
  employees: {type: number, from: CRM}
facts:
  contacts: {count: [CONTACTED]}
  first_contact: {first: [CONTACTED]}
  budget: {max: BUDGET_CONFIRMED.amount}
  decision_date: {latest: DECISION_TIMELINE_PROVIDED.decision_by}
population: contacts >= 1
stages:
  - {name: cold, meaning: m, when: budget is none}
  - {name: hot, meaning: m, when: budget is not none}
"""))
    now = at("2026-11-26")
    h = lead(("CONTACTED", now - MS_PER_DAY, {}), ("BUDGET_CONFIRMED", now, {"amount": 12500}))
    h.set_property("segment", now, "smb")
    _, facts = compiled.evaluate(h, now)
    assert compiled.format_facts(facts) == {
        "contacts": "1", "first_contact": "2026-11-25T12:00:00Z", "budget": "12500.0",
        "decision_date": "none", "segment": "smb", "employees": "none"}
