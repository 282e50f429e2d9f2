"""The next review time against the search it shortcuts: each windowed series' own exit, and each
`today` comparison searched from the day of the review, on definitions with windows in months
and in days, counts and sums over several activities, and comparisons grouped by what they
read (review.py's memo of switch days is shared by a group's comparisons)."""

from __future__ import annotations

from functools import partial

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.calendar import MS_PER_DAY, parse_date
from streams.core.definitions.compiler import CompiledDefinitions, compile_definitions
from streams.core.definitions.loader import load_text
from streams.core.definitions.review import (
    HORIZON_DAYS,
    _first_true,
    _flips_at,
    _flips_on_day,
    _window_passed,
    _window_start,
    next_review,
    window_exits,
)
from streams.core.lead_history import LeadHistory
from tests.unit.core.definitions_helpers import definitions_yaml

START = parse_date("2026-01-01") * MS_PER_DAY
SPAN = 800 * MS_PER_DAY
ACTIVITIES = ["CONTACTED", "PRICING_VIEWED", "DEMO_REQUESTED", "MEETING_HELD",
              "DECISION_TIMELINE_PROVIDED", "BUDGET_CONFIRMED"]
FACTS = """\
facts:
  contacts:
    count: [CONTACTED]
  interest:
    count: [PRICING_VIEWED, DEMO_REQUESTED, MEETING_HELD]
    within: {interest}
  meetings:
    count: [MEETING_HELD]
    within: 10 days
  budget:
    sum: BUDGET_CONFIRMED.amount
    within: {budget}
  decision_date:
    latest: DECISION_TIMELINE_PROVIDED.decision_by
  first_contact:
    first: CONTACTED
"""


def compiled_with(interest: str, budget: str) -> CompiledDefinitions:
    return compile_definitions(load_text(definitions_yaml(
        [("cold", "not soon and not engaged"), ("warm", "engaged and not soon"), ("hot", "soon")],
        conditions={
            # two comparisons on the decision date alone (one switch group), one on the
            # decision date and the budget (another), one reading `now` (searched every time)
            "soon": "today <= decision_date <= today + 6 months",
            "engaged": "interest >= 2 or meetings >= 1 or (budget is not none and budget >= 1000 "
                       "and decision_date is not none and decision_date <= today + 1 year) or "
                       "(first_contact is not none and now - 30 days < first_contact)"},
        facts=FACTS.format(interest=interest, budget=budget))))


DEFINITIONS = {(i, b): compiled_with(i, b) for i, b in
               [("3 months", "1 month"), ("45 days", "2 months"), ("11 months", "90 days")]}


@st.composite
def events(draw: st.DrawFn) -> list[dict]:
    out = []
    for i in range(draw(st.integers(0, 25))):
        activity = draw(st.sampled_from(ACTIVITIES))
        # month ends, so windows in months land on days that do not exist in every month
        day = draw(st.one_of(st.integers(0, 800), st.sampled_from([30, 58, 59, 90, 120, 424])))
        event = {"event_id": f"e{i}", "activity": activity,
                 "occurred_at": START + day * MS_PER_DAY + draw(st.integers(0, MS_PER_DAY - 1))}
        if activity == "DECISION_TIMELINE_PROVIDED":
            event["decision_by"] = parse_date("2026-01-01") + draw(st.integers(-60, 1200))
        if activity == "BUDGET_CONFIRMED":
            event["amount"] = float(draw(st.integers(0, 5000)))
        out.append(event)
    return out


def exits_per_series(compiled: CompiledDefinitions, h: LeadHistory, now: int) -> int | None:
    """window_exits as first written: every series' own exit, the earliest of them."""
    exits = []
    for window in compiled.windows:
        start = _window_start(now, window.months, window.millis)
        if window.values_key is not None:
            series = [h.value_times.get(window.values_key) or []]
        else:
            series = [h.activities[a].recent for a in window.activities if a in h.activities]
        for times in series:
            inside = [t for t in times if start < t <= now]
            if not inside:
                continue
            oldest = min(inside)
            span = (window.within.max_days + 1) * MS_PER_DAY
            exit_at = _first_true(partial(_window_passed, window.within, oldest), now,
                                  int(now + span))
            if exit_at is not None:
                exits.append(exit_at)
    return min(exits, default=None)


def searched(compiled: CompiledDefinitions, h: LeadHistory, now: int) -> int | None:
    """next_review as first written, with no memo: every series' own exit, each comparison
    that reads time searched from now (a `today` comparison from today)."""
    facts = compiled.compute_facts(h, now)
    candidates = [t for t in [exits_per_series(compiled, h, now)] if t is not None]
    today = now // MS_PER_DAY
    for pair in compiled.time_pairs:
        before = pair.holds(facts, now)
        if pair.today_only:
            day = _first_true(partial(_flips_on_day, pair, facts, before), today,
                              today + HORIZON_DAYS)
            candidates += [day * MS_PER_DAY] if day is not None else []
        else:
            at = _first_true(partial(_flips_at, pair, facts, before), now,
                             now + HORIZON_DAYS * MS_PER_DAY)
            candidates += [at] if at is not None else []
    return min(candidates, default=None)


def test_comparisons_that_read_the_same_values_share_one_switch_group():
    compiled = next(iter(DEFINITIONS.values()))
    decision = compiled.definitions.value_names.index("decision_date")
    # `today <= decision_date <= today + 6 months` and `decision_date <= today + 1 year`: three
    # comparisons of `today` with the decision date, one group, one memo entry per date
    (group,) = compiled.switch_groups
    assert [compiled.time_pairs[i].reads for i in group.members] == [(decision,)] * 3
    assert len(compiled.searched_pairs) == 1  # `now - 30 days < first_contact`
    compiled.forget_switch_days()
    h = LeadHistory()
    h.apply({"event_id": "1", "activity": "CONTACTED", "occurred_at": START})
    h.apply({"event_id": "2", "activity": "DECISION_TIMELINE_PROVIDED", "occurred_at": START,
             "decision_by": parse_date("2027-01-15")})
    next_review(compiled, h, START)
    assert compiled.switch_days == ({parse_date("2027-01-15"): (
        parse_date("2026-01-15"),  # a year before: `decision_date <= today + 1 year` holds
        parse_date("2026-07-15"),  # six months before: `... <= today + 6 months` holds
        parse_date("2027-01-16"),  # the day after: `today <= decision_date` no longer does
    )},)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(DEFINITIONS)), events(), st.integers(0, 400 * MS_PER_DAY))
def test_the_oldest_event_inside_a_window_is_the_first_to_leave_it(key, evs, after):
    compiled = DEFINITIONS[key]
    h = LeadHistory()
    for e in evs:
        h.apply(e)
    now = max(h.max_occurred_at, START) + after
    assert window_exits(compiled, h, now) == exits_per_series(compiled, h, now)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(DEFINITIONS)), events(), st.integers(0, 400 * MS_PER_DAY),
       st.booleans())
def test_the_next_review_is_the_search_without_the_memo(key, evs, after, cold):
    compiled = DEFINITIONS[key]
    h = LeadHistory()
    for e in evs:
        h.apply(e)
    now = max(h.max_occurred_at, START) + after
    if cold:
        compiled.forget_switch_days()
    assert next_review(compiled, h, now) == searched(compiled, h, now)
