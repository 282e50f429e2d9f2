"""State transitions of the core, without Kafka: sequences, time, opinions, erasure, handoff."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.calendar import MS_PER_DAY, parse_date
from streams.core.definitions.compiler import compile_definitions
from streams.core.definitions.loader import load_file
from streams.core.definitions.review import next_review
from streams.core.lead_state import BRIEF_FIELDS, RECENT_CHANGES, LeadState, dumps, loads
from streams.core.signals import Assessment, HandoffResponse, SalesDecision, SlaBreach
from streams.core.stage_machine import APPLIED, DUPLICATE, StageMachine
from tests.unit.core.state_formats import format_6, format_7, written_as
from tests.unit.core.test_properties import events, replayed
from tests.unit.core.test_review import searched

COMPILED = compile_definitions(load_file("definitions/lead-stages.yaml"))
T0 = parse_date("2026-11-26") * MS_PER_DAY + 12 * 3_600_000
DAY = MS_PER_DAY


def ev(i: int, activity: str, at: int, **extra: object) -> dict:
    return {"event_id": f"e{i}", "lead_id": "L", "occurred_at": at, "activity": activity,
            "source": "WEB", **extra}


def run(*evs: dict) -> tuple[LeadState, list, StageMachine]:
    machine, state, signals = StageMachine(COMPILED), LeadState("L"), []
    for e in evs:
        machine.apply(state, e, signals)
    return state, signals, machine


def path(state: LeadState) -> list[tuple]:
    return [(c["sequence"], c["previous_stage"], c["stage"], c["cause"])
            for c in state.unpublished()]


def test_a_lead_moves_through_the_funnel_with_contiguous_sequences():
    state, _, _ = run(ev(1, "PAGE_VIEWED", T0), ev(2, "CONTACTED", T0 + 1),
                      ev(3, "PRICING_VIEWED", T0 + 2),
                      ev(4, "DECISION_TIMELINE_PROVIDED", T0 + 3,
                         decision_by=parse_date("2027-03-01")))
    assert path(state) == [(1, None, "cold", "EVENT"), (2, "cold", "warm", "EVENT"),
                           (3, "warm", "hot", "EVENT")]
    hot = state.unpublished()[-1]
    assert hot["event_id"] == "L:3" and hot["cause_event_id"] == "e4"
    assert hot["changed_at"] == T0 + 3 and hot["facts"]["decision_date"] == "2027-03-01"
    assert "decision_date = 2027-03-01" in hot["reason"]


def test_duplicates_change_nothing():
    machine, state, signals = StageMachine(COMPILED), LeadState("L"), []
    assert machine.apply(state, ev(1, "CONTACTED", T0), signals) == APPLIED
    before = dumps(state)
    assert machine.apply(state, ev(1, "CONTACTED", T0 + 5), signals) == DUPLICATE
    assert dumps(state) == before


def test_an_older_timeline_arriving_later_does_not_move_the_lead():
    state, _, _ = run(ev(1, "CONTACTED", T0),
                      ev(2, "DECISION_TIMELINE_PROVIDED", T0 + 10,
                         decision_by=parse_date("2027-01-15")),
                      ev(3, "DECISION_TIMELINE_PROVIDED", T0 + 5,
                         decision_by=parse_date("2029-01-01")))
    assert state.stage == "hot" and state.sequence == 2


def test_time_alone_moves_warm_to_cold_at_the_exact_instant():
    state, signals, machine = run(ev(1, "CONTACTED", T0), ev(2, "DEMO_REQUESTED", T0))
    assert state.stage == "warm" and state.next_review == T0 + 90 * DAY
    machine.advance(state, T0 + 90 * DAY - 1, signals)
    assert state.stage == "warm"
    machine.advance(state, T0 + 200 * DAY, signals)
    assert path(state)[-1] == (3, "warm", "cold", "TIME")
    assert state.unpublished()[-1]["changed_at"] == T0 + 90 * DAY


def test_a_passed_decision_date_makes_a_hot_lead_cold():
    state, _, machine = run(ev(1, "CONTACTED", T0), ev(
        2, "DECISION_TIMELINE_PROVIDED", T0, decision_by=parse_date("2026-12-10")))
    assert state.stage == "hot"
    machine.advance(state, T0 + 30 * DAY, [])
    assert state.stage == "cold"
    assert state.unpublished()[-1]["changed_at"] == parse_date("2026-12-11") * DAY


def test_events_after_a_gap_first_catch_up_with_time():
    state, _, _ = run(ev(1, "CONTACTED", T0), ev(2, "DEMO_REQUESTED", T0),
                      ev(3, "DEMO_REQUESTED", T0 + 100 * DAY))
    assert path(state)[1:] == [(2, "cold", "warm", "EVENT"), (3, "warm", "cold", "TIME"),
                               (4, "cold", "warm", "EVENT")]


def test_opinions_move_nothing_and_are_judged_against_the_objective_stage():
    state, signals, machine = run(ev(1, "CONTACTED", T0))
    machine.apply(state, ev(2, "STAGE_ASSESSED", T0 + 200 * DAY, team="MARKETING",
                            assessed_stage="hot"), signals)
    machine.apply(state, ev(3, "STAGE_ASSESSED", T0, team="SALES", assessed_stage="cold"),
                  signals)
    assert state.sequence == 1 and state.evaluated_at == T0
    assert [s for s in signals if isinstance(s, Assessment)] == [
        Assessment("MARKETING", "hot", "cold", "overrated"),
        Assessment("SALES", "cold", "cold", "agree")]


def test_erasure_forgets_the_lead_but_not_its_numbering():
    state, _, machine = run(ev(1, "CONTACTED", T0))
    machine.erase(state, ev(2, "ERASURE_REQUESTED", T0 + 5), [])
    assert state.erased and state.history.activities == {} and state.stage is None
    assert path(state)[-1] == (2, "cold", None, "EVENT")
    machine.apply(state, ev(3, "CONTACTED", T0 + 10), [])
    assert path(state)[-1] == (3, None, "cold", "EVENT") and not state.erased


def test_handoff_follow_up_in_time_and_breach():
    decided = dict(decision_by=parse_date("2027-01-15"))
    state, signals, machine = run(ev(1, "CONTACTED", T0),
                                  ev(2, "DECISION_TIMELINE_PROVIDED", T0, **decided),
                                  ev(3, "SALES_ACCEPTED", T0 + DAY))
    assert HandoffResponse("hot", 86400.0) in signals
    assert SalesDecision("hot", "accepted") in signals
    machine.advance(state, T0 + 10 * DAY, signals)
    assert not any(isinstance(s, SlaBreach) for s in signals)

    late, signals, machine = run(ev(1, "CONTACTED", T0),
                                 ev(2, "DECISION_TIMELINE_PROVIDED", T0, **decided))
    assert late.next_review == T0 + 2 * DAY
    machine.advance(late, T0 + 3 * DAY, signals)
    assert SlaBreach("hot") in signals and late.stage == "hot"


def test_new_definitions_reevaluate_with_cause_definitions():
    state, _, machine = run(ev(1, "CONTACTED", T0))
    state.definitions_version = 0
    state.stage = "warm"  # as an older version had it
    machine.redefine(state, [])
    assert path(state)[-1] == (2, "warm", "cold", "DEFINITIONS")
    assert state.definitions_version == 1


def test_state_survives_serialisation():
    state, _, _ = run(ev(1, "CONTACTED", T0), ev(2, "DECISION_TIMELINE_PROVIDED", T0,
                                                   decision_by=parse_date("2027-01-15")))
    again = loads(dumps(state))
    assert again == state
    assert dumps(again) == dumps(state)


@settings(max_examples=200, deadline=None)
@given(events())
def test_states_are_written_byte_for_byte_as_format_7_and_read_back(evs):
    state, _, _ = run(*({**e, "lead_id": "L", "source": "WEB"} for e in evs))
    state.history.properties["industry"] = (T0, "software")
    state.history.properties["employees"] = (T0 + 1, None)
    state.history.totals["DEAL_WON.amount"] = [10.5, 10.5, 1]
    for published in (False, True):  # the latest change in the outbox, then as last_change
        if published:
            state.published()
        assert dumps(state) == format_7(state)
        for written in (format_7(state), format_6(state)):  # 6: changelogs of 2026-12-06
            again = loads(written)
            assert again == state and again.recent_changes == state.recent_changes
            assert again.unpublished() == state.unpublished()
            assert all(type(v) is tuple for v in again.history.properties.values())
            assert again.history.totals["DEAL_WON.amount"][2] == 1
            assert dumps(again) == format_7(state)


def six_changes() -> LeadState:
    """cold, warm, hot, warm (time), cold (time), warm: six changes, all in the outbox."""
    state, _, _ = run(ev(1, "CONTACTED", T0), ev(2, "PRICING_VIEWED", T0 + 1),
                      ev(3, "DECISION_TIMELINE_PROVIDED", T0 + 2,
                         decision_by=parse_date("2027-01-15")),
                      ev(4, "PAGE_VIEWED", T0 + 300 * DAY), ev(5, "DEMO_REQUESTED", T0 + 301 * DAY))
    assert state.sequence == 6 == len(state.outbox)
    return state


def test_recent_changes_keep_the_latest_in_full_and_the_others_in_brief():
    state = six_changes()
    recent = state.recent_changes
    assert [c["sequence"] for c in recent] == [2, 3, 4, 5, 6]
    assert recent[-1] == state.unpublished()[-1]  # as published: with its reason and facts
    assert "deciding_soon" in recent[-1]["reason"] or "interest_signals" in recent[-1]["reason"]
    for brief, change in zip(recent[:-1], state.unpublished()[1:-1], strict=True):
        assert "reason" not in brief and "facts" not in brief
        assert brief == {k: change[k] for k in ("event_id", "lead_id", *BRIEF_FIELDS)}
    # the point of the brief: a state is written at every event, and reasons are long
    assert all(len(packed) < 64 for packed in state.recent_packed)
    # the latest in full, once: in the outbox until it is published, then as last_change
    assert state.last_change == b"" and len(state.outbox[-1]) > 150
    assert dumps(state).count(recent[-1]["reason"].encode()) == 1
    state.published()
    assert state.outbox == [] and len(state.last_change) > 150
    assert state.recent_changes == recent
    assert loads(dumps(state)).recent_changes == recent


@pytest.mark.parametrize("fmt", [2, 3, 4, 5])
def test_states_of_older_formats_load_with_their_recent_changes(fmt):
    """Changelogs written by earlier versions recover unchanged: the last change in full."""
    state = six_changes()
    old = loads(written_as(state, fmt, state.unpublished()[-RECENT_CHANGES:]))
    assert old == state
    assert old.recent_changes == state.recent_changes
    assert dumps(old) == dumps(state)


def test_an_older_change_without_a_field_of_the_brief_still_loads():
    """A state must load whatever an older version put in its changes: a lead that cannot be
    read is left out of sweeps and lookups."""
    state = six_changes()
    changes = [{k: v for k, v in c.items() if k != "cause_event_id"}
               for c in state.unpublished()[-2:]]
    old = loads(written_as(state, 3, changes))
    assert [c["sequence"] for c in old.recent_changes] == [5, 6]
    assert old.recent_changes[0]["cause_event_id"] is None


def test_an_erased_lead_keeps_no_change_of_its_past():
    state = six_changes()
    machine = StageMachine(COMPILED)
    machine.fold(state, ev(9, "ERASURE_REQUESTED", T0 + 302 * DAY), [])
    assert state.erased and state.recent_packed == [] and state.last_change == b""
    assert state.unpublished()[-1]["stage"] is None  # the tombstone still goes out
    assert loads(dumps(state)).recent_changes == []


@settings(max_examples=300, deadline=None)
@given(events(), st.integers(0, 400 * MS_PER_DAY), st.floats(0, 1))
def test_the_next_review_is_never_late(evs, after, fraction):
    h, now = replayed(evs, after)
    review = next_review(COMPILED, h, now)
    stage_now = COMPILED.evaluate(h, now)[0]
    horizon = review if review is not None else now + 3 * 366 * MS_PER_DAY
    probe = now + int((horizon - now - 1) * fraction) if horizon > now + 1 else now
    assert COMPILED.evaluate(h, probe)[0] == stage_now


@settings(max_examples=300, deadline=None)
@given(events(), st.integers(0, 400 * MS_PER_DAY))
def test_a_remembered_switch_day_gives_the_review_a_search_from_today_gives(evs, after):
    h, now = replayed(evs, after)
    assert next_review(COMPILED, h, now) == searched(COMPILED, h, now)  # memo maybe warm
    COMPILED.forget_switch_days()
    assert next_review(COMPILED, h, now) == searched(COMPILED, h, now)


def test_switch_days_are_shared_by_leads_with_the_same_decision_date():
    decided = {"decision_by": parse_date("2027-01-15")}
    COMPILED.forget_switch_days()
    one, _, _ = run(ev(1, "CONTACTED", T0), ev(2, "DECISION_TIMELINE_PROVIDED", T0, **decided))
    # `today <= decision_date <= today + 6 months`: two comparisons, one group, one date
    assert len(COMPILED.switch_groups) == 1
    (days,) = COMPILED.switch_days
    remembered = dict(days)
    assert remembered[parse_date("2027-01-15")] == (
        parse_date("2026-07-15"), parse_date("2027-01-16"))  # six months before; the day after
    other, _, _ = run(ev(1, "CONTACTED", T0), ev(2, "CONTACTED", T0),
                      ev(3, "DEMO_REQUESTED", T0), ev(4, "DECISION_TIMELINE_PROVIDED", T0,
                                                      **decided))
    assert days == remembered  # other counts, same entries
    assert one.next_review == other.next_review == T0 + 2 * DAY  # the handoff deadline


def test_ids_trimmed_by_opinions_are_reported_at_once_and_never_stored():
    from streams.core.lead_history import SEEN_CAP, TRIM_EVENT_IDS
    from streams.core.signals import Trimmed

    state, signals, machine = run(ev(0, "CONTACTED", T0))
    for i in range(1, SEEN_CAP + 1):  # one id past the cap
        machine.apply(state, ev(i, "STAGE_ASSESSED", T0 + i, team="SALES",
                                assessed_stage="hot"), signals)
    assert signals.count(Trimmed(TRIM_EVENT_IDS)) == 1
    assert state.history.take_trimmed() == ()
    assert dumps(state) == format_7(state)
