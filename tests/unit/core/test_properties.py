"""Property-based tests: realistic generated leads, accepted definitions, exactly one stage."""

from __future__ import annotations

import datetime as dt

from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.core.calendar import MS_PER_DAY, add_months, day_number, parse_date, to_date
from streams.core.definitions.checker import check
from streams.core.definitions.compiler import compile_definitions
from streams.core.definitions.loader import load_file, load_text
from streams.core.lead_history import LeadHistory
from tests.unit.core.definitions_helpers import definitions_yaml

ACTIVITIES = ["CONTACTED", "DETAILS_PROVIDED", "PAGE_VIEWED", "PRICING_VIEWED", "DEMO_REQUESTED",
              "MEETING_HELD", "CONTENT_DOWNLOADED", "WEBINAR_ATTENDED",
              "DECISION_TIMELINE_PROVIDED", "BUDGET_CONFIRMED", "SALES_ACCEPTED"]
START = parse_date("2026-01-01") * MS_PER_DAY
SPAN = 800 * MS_PER_DAY

ALTERNATIVE = definitions_yaml(
    [("cold", "interest_signals == 0 and not soon"),
     ("warm", "interest_signals >= 1 and interest_signals < 3 and not soon"),
     ("engaged", "interest_signals >= 3 and not soon"),
     ("hot", "soon")],
    conditions={"soon": "decision_date is not none and decision_date >= today and "
                        "decision_date < today + 1 year"})
ACCEPTED = [load_file("definitions/lead-stages.yaml"), load_text(ALTERNATIVE)]
assert all(check(d).valid for d in ACCEPTED)
COMPILED = [compile_definitions(d) for d in ACCEPTED]


@st.composite
def events(draw: st.DrawFn) -> list[dict]:
    out = []
    for i in range(draw(st.integers(0, 25))):
        activity = draw(st.sampled_from(ACTIVITIES))
        event = {"event_id": f"e{draw(st.integers(0, 30))}-{i % 3}",
                 "occurred_at": START + draw(st.integers(0, SPAN)), "activity": activity}
        if activity == "DECISION_TIMELINE_PROVIDED":
            event["decision_by"] = parse_date("2026-01-01") + draw(st.integers(-60, 1200))
        out.append(event)
    return out


def replayed(evs: list[dict], after: int) -> tuple[LeadHistory, int]:
    """The lead's history and an evaluation time `after` ms past its latest event."""
    h = LeadHistory()
    for e in evs:
        h.apply(e)
    return h, max(h.max_occurred_at, START) + after


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events(), st.integers(0, 400 * MS_PER_DAY))
def test_exactly_one_stage_for_every_lead_in_the_population(evs, after):
    h, now = replayed(evs, after)
    for compiled in COMPILED:
        facts = compiled.compute_facts(h, now)
        population, holds = compiled.all_stages(facts, now)
        if population:
            assert sum(holds) == 1, (compiled.definitions.stage_names, facts, now)


@settings(max_examples=300, deadline=None)
@given(events(), st.integers(0, 400 * MS_PER_DAY))
def test_facts_equal_a_naive_replay_of_the_distinct_events(evs, after):
    h, now = replayed(evs, after)
    distinct = list({e["event_id"]: e for e in reversed(evs)}.values())  # first arrival wins
    interest = {"DETAILS_PROVIDED", "PRICING_VIEWED", "CONTENT_DOWNLOADED", "WEBINAR_ATTENDED",
                "DEMO_REQUESTED", "MEETING_HELD"}
    contacts = sum(e["activity"] == "CONTACTED" for e in distinct)
    window = sum(e["activity"] in interest and now - 90 * MS_PER_DAY < e["occurred_at"] <= now
                 for e in distinct)
    timelines = [e for e in distinct if e["activity"] == "DECISION_TIMELINE_PROVIDED"]
    latest = max(timelines, key=lambda e: (e["occurred_at"], e["event_id"]), default=None)
    expected = (contacts, window, latest["decision_by"] if latest else None)
    assert COMPILED[0].compute_facts(h, now) == expected


@given(st.dates(dt.date(2000, 1, 1), dt.date(2090, 12, 31)), st.integers(-36, 36))
def test_calendar_months_match_dateutil(day, months):
    assert to_date(add_months(day_number(day), months)) == day + relativedelta(months=months)
