"""DESIGN §4.1: properties from systems of record, sets, arithmetic, sums and maxima."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.core.calendar import MS_PER_DAY, parse_date
from streams.core.definitions.checker import check
from streams.core.definitions.compiler import compile_definitions
from streams.core.definitions.loader import DefinitionsError, load_file, load_text
from streams.core.definitions.review import next_review
from streams.core.lead_state import LeadState, dumps, loads
from streams.core.signals import PropertyRejected
from streams.core.stage_machine import StageMachine
from tests.fakes import activity_record
from tests.paths import REPO_ROOT
from tests.unit.core.state_formats import written_as

EXAMPLE = REPO_ROOT / "definitions" / "examples" / "fit-and-intent.yaml"
HEADER = """\
version: 1
agreed_by:
  marketing: Head of Marketing
  sales: Head of Sales
properties:
  employees:
    type: number
    from: CRM
    min: 1
  industry:
    type: text
    from: CRM
    values: [software, finance, other]
  segment:
    type: text
    from: CRM
    attribute: crm_segment
    values: [smb, enterprise]
  renewal:
    type: date
    from: CRM
  vip:
    type: boolean
    from: OTHER
facts:
  contacts:
    count: [CONTACTED]
  meetings:
    count: [MEETING_HELD]
    within: 90 days
  interest:
    count: [PRICING_VIEWED, DEMO_REQUESTED]
    within: 90 days
  budget:
    max: BUDGET_CONFIRMED.amount
  budget_recent:
    sum: BUDGET_CONFIRMED.amount
    within: 30 days
population: contacts >= 1
"""


def definitions(stages: list[tuple[str, str]], extra: str = "") -> str:
    return HEADER + extra + "stages:\n" + "".join(
        f"  - name: {name}\n    meaning: The {name} stage.\n    when: '{when}'\n"
        for name, when in stages)


def problems(text: str) -> str:
    with pytest.raises(DefinitionsError) as caught:
        load_text(text)
    return str(caught.value)


@pytest.mark.parametrize(("edit", "words"), [
    (("industry == \"software\"", "industy == \"software\""),
     "`industy` is not a fact or condition (did you mean `industry`?)"),
    (("industry == \"software\"", "industry == \"sofware\""),
     '`industry` is never "sofware": its values are software, finance, other '
     '(did you mean "software"?)'),
    (("industry == \"software\"", "industry == 3"), "compares a text with a count"),
    (("industry == \"software\"", "industry in [\"software\", \"banking\"]"),
     '`industry` is never "banking"'),
    (("industry == \"software\"", "interest * meetings >= 2"),
     "multiplies two values that both vary"),
    (("    from: OTHER\n", "    from: STAGE_ASSESSED\n"),
     "`from: STAGE_ASSESSED` is not a source"),
    (("    type: boolean\n    from: OTHER\n", "    type: boolean\n"),
     "property `vip` must say which system of record sets it"),
    (("    values: [software, finance, other]\n", ""),
     "text property `industry` must list every value it can take"),
    (("    attribute: crm_segment\n", "    attribute: assessed_stage\n"),
     "reads `assessed_stage`, which is a team's opinion"),
    (("    max: BUDGET_CONFIRMED.amount\n", "    sum: DECISION_TIMELINE_PROVIDED.decision_by\n"),
     "`sum` needs a numeric field, and `decision_by` is a date"),
    (("    max: BUDGET_CONFIRMED.amount\n", "    sum: PAGE_VIEWED.amount\n"),
     "PAGE_VIEWED events carry no amount; only BUDGET_CONFIRMED and DEAL_WON do"),
    (("    type: number\n", "    type: numbr\n"), "(did you mean number?)"),
    (("    min: 1\n", "    min: 1\n    values: [a]\n"), "only text properties list `values`"),
])
def test_each_rule_of_the_loader_says_what_is_wrong(edit, words):
    text = definitions([("other_fit", 'not (industry == "software")'),
                        ("fit", 'industry == "software"')])
    assert edit[0] in text, edit[0]
    assert words in problems(text.replace(*edit, 1))


def test_the_example_passes_the_checker_quickly():
    started = time.perf_counter()
    result = check(load_file(EXAMPLE))
    assert result.valid, [f.message for f in result.findings]
    assert time.perf_counter() - started < 1.0


def test_an_opinion_read_through_a_property_is_rejected():
    path = REPO_ROOT / "definitions" / "examples" / "opinion-as-property.yaml"
    with pytest.raises(DefinitionsError) as caught:
        load_file(path)
    assert "which is a team's opinion" in str(caught.value)


def test_counterexamples_show_property_values():
    text = definitions([("small", "employees < 100"),
                        ("software", 'employees >= 50 and industry == "software"'),
                        ("rest", 'employees >= 100 and industry != "software"')])
    result = check(load_text(text))
    overlap = next(f for f in result.findings if f.kind == "overlap")
    assert overlap.stages == ["small", "software"] and overlap.counterexample is not None
    values = overlap.counterexample.facts
    assert values["industry"] == '"software"' and 50 <= float(values["employees"]) < 100
    gap = next(f for f in result.findings if f.kind == "gap")
    assert gap.counterexample is not None and gap.counterexample.facts["employees"] == "none"


def test_sums_and_maxima_are_realistic_in_proofs():
    # no lead has a negative sum, nor a recent budget without any budget at all
    text = definitions([("low", "budget_recent is none or budget_recent < 0"),
                        ("high", "budget_recent >= 0")])
    result = check(load_text(text))
    assert result.valid, [f.message for f in result.findings]
    assert any(f.kind == "unreachable" for f in check(load_text(definitions(
        [("never", "budget_recent > 0 and budget is none"),
         ("always", "not (budget_recent > 0 and budget is none)")]))).findings)


def test_the_checker_stops_at_its_time_budget_with_a_clear_finding():
    result = check(load_file(EXAMPLE), budget_s=0.0)
    assert not result.valid
    assert result.findings[0].kind == "unknown"
    assert "could not prove within 0 s" in result.findings[0].message


NOW = parse_date("2026-11-27") * MS_PER_DAY


def event(i: int, activity: str = "CONTACTED", source: str = "CRM", at: int = NOW,
          **fields: object) -> dict:
    return activity_record(f"e{i}", "L", at, activity, source=source, **fields)


MACHINE = StageMachine(compile_definitions(load_text(definitions(
    [("nurture", 'not (industry in ["software", "finance"] and employees >= 50)'),
     ("fit", 'industry in ["software", "finance"] and employees >= 50 and not vip'),
     ("vip", 'industry in ["software", "finance"] and employees >= 50 and vip')]))))


def run(*events: dict) -> tuple[LeadState, list]:
    state, signals = LeadState("L"), []
    for e in events:
        MACHINE.fold(state, e, signals)
    return state, signals


def props(state: LeadState) -> dict:
    return {k: v for k, (_, v) in state.history.properties.items()}


def test_the_crm_sets_properties_and_the_stage_follows():
    state, _ = run(event(1), event(2, "DETAILS_PROVIDED", attributes={
        "industry": "software", "employees": "120", "crm_segment": "enterprise"}))
    assert props(state) == {"industry": "software", "employees": 120.0,
                            "segment": "enterprise"}
    assert [c["stage"] for c in state.recent_changes] == ["nurture", "fit"]
    assert state.recent_changes[-1]["facts"]["industry"] == "software"
    assert "industry" in state.recent_changes[-1]["reason"]


def test_only_the_declared_source_sets_a_property():
    state, _ = run(event(1, attributes={"vip": "true"}),
                   event(2, source="WEB", attributes={"industry": "software"}),
                   event(3, source="OTHER", attributes={"vip": "true"}))
    assert props(state) == {"vip": True}


def test_a_late_older_value_never_replaces_a_newer_one_and_empty_clears():
    state, _ = run(event(1, at=NOW, attributes={"industry": "finance"}),
                   event(2, at=NOW - 5000, attributes={"industry": "software"}))
    assert props(state)["industry"] == "finance"
    state2, _ = run(event(1, at=NOW, attributes={"industry": "finance"}),
                    event(3, at=NOW + 1, attributes={"industry": ""}))
    assert props(state2)["industry"] is None


@pytest.mark.parametrize(("name", "raw"), [("employees", "lots"), ("employees", "0"),
                                           ("employees", "nan"), ("industry", "banking"),
                                           ("renewal", "next year"), ("renewal", "2300-01-01")])
def test_a_value_that_does_not_parse_leaves_the_property_and_is_signalled(name, raw):
    attribute = "crm_segment" if name == "segment" else name
    good = {"employees": "80", "industry": "finance", "renewal": "2027-01-31"}[name]
    state, signals = run(event(1, attributes={attribute: good}),
                         event(2, "PRICING_VIEWED", at=NOW + 1, attributes={attribute: raw}))
    assert PropertyRejected(name) in signals
    assert state.history.activities["PRICING_VIEWED"].count == 1  # the event is otherwise applied
    assert props(state)[name] == MACHINE.definitions.properties[name].parse(good)


def test_opinions_never_set_properties_and_erasure_removes_them():
    state, _ = run(event(1), event(2, "STAGE_ASSESSED", team="SALES", assessed_stage="vip",
                                   attributes={"industry": "software"}))
    assert props(state) == {}
    state, _ = run(event(1, attributes={"industry": "software"}), event(2, "ERASURE_REQUESTED"))
    assert props(state) == {}


def test_sums_and_maxima_are_kept_incrementally_and_windows_expire():
    compiled = MACHINE.compiled
    state, _ = run(event(1),
                   event(2, "BUDGET_CONFIRMED", at=NOW - 40 * MS_PER_DAY, amount=5000.0),
                   event(3, "BUDGET_CONFIRMED", at=NOW - 10 * MS_PER_DAY, amount=2000.0),
                   event(4, "BUDGET_CONFIRMED", at=NOW - 5 * MS_PER_DAY, amount=1000.0),
                   event(4, "BUDGET_CONFIRMED", at=NOW - 5 * MS_PER_DAY, amount=1000.0))
    names = list(compiled.definitions.value_names)
    facts = dict(zip(names, compiled.compute_facts(state.history, NOW), strict=True))
    assert facts["budget"] == 5000.0 and facts["budget_recent"] == 3000.0  # e4 counted once
    later = dict(zip(names, compiled.compute_facts(state.history, NOW + 21 * MS_PER_DAY),
                     strict=True))
    assert later["budget_recent"] == 1000.0  # e3 left the 30-day window
    # the sweep's next review includes the instant a value leaves a windowed sum
    review = next_review(compiled, state.history, NOW)
    assert review is not None and review <= NOW + 20 * MS_PER_DAY + 1


def test_states_written_before_properties_still_load():
    state, _ = run(event(1, attributes={"industry": "finance"}),
                   event(2, "BUDGET_CONFIRMED", amount=10.0))
    old = loads(written_as(state, 4, []))  # format 4: no totals, values or properties
    assert old.history.properties == {} and old.history.totals == {}
    assert loads(dumps(state)).history.properties == state.history.properties


ACCEPTED = compile_definitions(load_file(EXAMPLE))
KINDS = ["CONTACTED", "PRICING_VIEWED", "DEMO_REQUESTED", "MEETING_HELD", "BUDGET_CONFIRMED",
         "DECISION_TIMELINE_PROVIDED", "WEBINAR_ATTENDED", "DETAILS_PROVIDED"]
ATTRIBUTES = st.fixed_dictionaries({}, optional={
    "employees": st.one_of(st.integers(-5, 100_000).map(str), st.sampled_from(["", "x"])),
    "industry": st.sampled_from(["software", "finance", "healthcare", "retail", "other", "",
                                 "banking"]),
    "crm_segment": st.sampled_from(["smb", "mid_market", "enterprise", "", "huge"])})


@st.composite
def fit_events(draw: st.DrawFn) -> list[dict]:
    out = []
    for i in range(draw(st.integers(1, 15))):
        kind = draw(st.sampled_from(KINDS))
        at = NOW - draw(st.integers(0, 400)) * MS_PER_DAY
        out.append(event(i, kind, draw(st.sampled_from(["CRM", "WEB"])), at,
                         attributes=draw(ATTRIBUTES),
                         amount=float(draw(st.integers(0, 500_000)))
                         if kind == "BUDGET_CONFIRMED" else None,
                         decision_by=NOW // MS_PER_DAY + draw(st.integers(-30, 400))
                         if kind == "DECISION_TIMELINE_PROVIDED" else None))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fit_events(), st.integers(0, 400 * MS_PER_DAY))
def test_exactly_one_stage_for_every_lead_under_the_accepted_example(evs, after):
    machine = StageMachine(ACCEPTED)
    state = LeadState("L")
    for e in evs:
        machine.fold(state, e, [])
    now = state.evaluated_at + after
    facts = ACCEPTED.compute_facts(state.history, now)
    population, holds = ACCEPTED.all_stages(facts, now)
    if population:
        assert sum(holds) == 1, (facts, now)
