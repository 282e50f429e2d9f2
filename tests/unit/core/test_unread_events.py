"""An event no fact reads is folded in without evaluating the lead again: the stage machine must
give exactly what evaluating every event gives (changes, stage, review time), on every lead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.core.calendar import MS_PER_DAY, parse_date
from streams.core.definitions.compiler import compile_definitions
from streams.core.definitions.loader import load_file
from streams.core.lead_state import LeadState
from streams.core.stage_machine import StageMachine

FILES = {"default": Path("definitions/lead-stages.yaml"),
         "fit-and-intent": Path("definitions/examples/fit-and-intent.yaml")}
START = parse_date("2026-01-01") * MS_PER_DAY
COMPILED = {name: compile_definitions(load_file(path)) for name, path in FILES.items()}
ACTIVITIES = ["CONTACTED", "PAGE_VIEWED", "EMAIL_CLICKED", "PRICING_VIEWED", "DEMO_REQUESTED",
              "DECISION_TIMELINE_PROVIDED", "SALES_ACCEPTED", "MEETING_HELD", "DEAL_WON",
              "BUDGET_CONFIRMED", "STAGE_ASSESSED", "ERASURE_REQUESTED", "CONTENT_DOWNLOADED"]


class EvaluatesEveryEvent(StageMachine):
    """The machine as it was: every event evaluated."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.reads_activity = None


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    at = START
    for _ in range(draw(st.integers(1, 30))):
        at += draw(st.integers(-3 * MS_PER_DAY, 60 * MS_PER_DAY))  # some arrive late
        activity = draw(st.sampled_from(ACTIVITIES))
        event: dict[str, Any] = {
            "event_id": f"e{draw(st.integers(0, 40))}", "lead_id": "L", "occurred_at": at,
            "activity": activity, "source": draw(st.sampled_from(["WEB", "CRM"]))}
        if activity == "DECISION_TIMELINE_PROVIDED":
            event["decision_by"] = at // MS_PER_DAY + draw(st.integers(-30, 400))
        if activity in ("DEAL_WON", "BUDGET_CONFIRMED"):
            event["amount"] = draw(st.floats(0, 1e6))
        if activity == "STAGE_ASSESSED":
            event |= {"team": "SALES", "assessed_stage": "hot"}
        if draw(st.booleans()):
            event["attributes"] = draw(st.fixed_dictionaries({}, optional={
                "employees": st.sampled_from(["5", "250", "5000", "many"]),
                "industry": st.sampled_from(["software", "retail", "mining"]),
                "crm_segment": st.sampled_from(["smb", "enterprise"])}))
        out.append(event)
    return out


@pytest.mark.parametrize("name", sorted(FILES))
@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(events=histories(), later=st.integers(0, 900 * MS_PER_DAY))
def test_the_same_changes_as_evaluating_every_event(name: str, events: list[dict[str, Any]],
                                                    later: int) -> None:
    compiled = COMPILED[name]
    fast, every = StageMachine(compiled), EvaluatesEveryEvent(compiled)
    assert fast.reads_activity and "PAGE_VIEWED" not in fast.reads_activity
    a, b = LeadState("L"), LeadState("L")
    signals_a: list[Any] = []
    signals_b: list[Any] = []
    for event in events:
        assert fast.fold(a, dict(event), signals_a) == every.fold(b, dict(event), signals_b)
        assert (a.stage, a.next_review, a.evaluated_at) == (b.stage, b.next_review,
                                                            b.evaluated_at)
    end = max(e["occurred_at"] for e in events) + later
    fast.advance(a, end, signals_a)
    every.advance(b, end, signals_b)
    assert a.unpublished() == b.unpublished()
    assert signals_a == signals_b


def test_properties_an_unread_activity_carries_are_evaluated():
    """A CRM page view sets industry and headcount: the lead leaves nurture at that event."""
    machine = StageMachine(COMPILED["fit-and-intent"])
    state: LeadState = LeadState("L")
    machine.fold(state, {"event_id": "e1", "lead_id": "L", "occurred_at": START,
                         "activity": "CONTACTED", "source": "CRM"}, [])
    assert state.stage == "nurture"
    machine.fold(state, {"event_id": "e2", "lead_id": "L", "occurred_at": START + 1000,
                         "activity": "PAGE_VIEWED", "source": "CRM",
                         "attributes": {"industry": "software", "employees": "250"}}, [])
    assert state.stage == "cold" and state.unpublished()[-1]["cause_event_id"] == "e2"
