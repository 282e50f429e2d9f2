"""The metric names and labels of DESIGN §6 are a contract with dashboards and alerts."""

import time

from prometheus_client import generate_latest

from streams.core.signals import (
    Assessment,
    Cause,
    Deal,
    HandoffResponse,
    PropertyRejected,
    SalesDecision,
    SlaBreach,
    StageChanged,
    TimeInStage,
)
from streams.worker.metrics import Metrics
from streams.worker.metrics_recorder import record_signals
from tests.fakes import Sender, activity_record, lead_pipeline, message, settled

DESIGN = {
    "leadstage_events_total": {"source", "activity", "outcome"},
    "leadstage_dead_letters_total": {"reason"},
    "leadstage_stage_changes_total": {"from_stage", "to_stage", "cause"},
    "leadstage_leads": {"stage"},
    "leadstage_time_in_stage_seconds": {"stage"},
    "leadstage_assessments_total": {"team", "assessed_stage", "objective_stage", "verdict"},
    "leadstage_sales_decisions_total": {"stage", "decision"},
    "leadstage_handoff_response_seconds": {"stage"},
    "leadstage_handoff_sla_breaches_total": {"stage"},
    "leadstage_deals_closed_total": {"stage", "outcome"},
    "leadstage_deal_amount_total": {"stage"},
    "leadstage_event_lag_seconds": set(),
    "leadstage_definitions_info": {"version"},
}
#: Beyond DESIGN §6: how hostile input was contained (README "Metrics").
CONTAINMENT = {
    "leadstage_events_rerouted_total": set(),
    "leadstage_dead_letters_dropped_total": set(),
    "leadstage_lead_failures_total": {"where"},
    "leadstage_quarantined_leads": set(),
    "leadstage_lead_state_trimmed_total": {"part"},
    # DESIGN §4.1
    "leadstage_property_values_rejected_total": {"property"},
}


def verdict(assessed, objective):
    order = ["cold", "warm", "hot"]
    a = order.index(assessed) if assessed in order else -1
    o = order.index(objective) if objective in order else -1
    return "agree" if a == o else ("overrated" if a > o else "underrated")


def staged() -> Metrics:
    m = Metrics()
    m.initialise(("cold", "warm", "hot"), "hot", verdict)
    return m


def test_every_design_metric_is_exposed_with_exactly_its_labels():
    m = Metrics()
    exposed = {f.name + ("_total" if f.type == "counter" else ""): f.type
               for f in m.registry.collect()}
    assert set(exposed) == set(DESIGN) | set(CONTAINMENT)
    declared = {
        "leadstage_events_total": m.events, "leadstage_dead_letters_total": m.dead_letters,
        "leadstage_stage_changes_total": m.stage_changes, "leadstage_leads": m.leads,
        "leadstage_time_in_stage_seconds": m.time_in_stage,
        "leadstage_assessments_total": m.assessments,
        "leadstage_sales_decisions_total": m.sales_decisions,
        "leadstage_handoff_response_seconds": m.handoff_response,
        "leadstage_handoff_sla_breaches_total": m.sla_breaches,
        "leadstage_deals_closed_total": m.deals_closed,
        "leadstage_deal_amount_total": m.deal_amount,
        "leadstage_event_lag_seconds": m.event_lag,
        "leadstage_definitions_info": m.definitions_info,
    }
    declared |= {
        "leadstage_events_rerouted_total": m.rerouted,
        "leadstage_dead_letters_dropped_total": m.dead_letters_dropped,
        "leadstage_lead_failures_total": m.lead_failures,
        "leadstage_quarantined_leads": m.quarantined,
        "leadstage_lead_state_trimmed_total": m.trimmed,
        "leadstage_property_values_rejected_total": m.property_rejected,
    }
    for name, metric in declared.items():
        assert set(metric._labelnames) == (DESIGN | CONTAINMENT)[name], name
    assert exposed["leadstage_leads"] == "gauge"
    assert exposed["leadstage_event_lag_seconds"] == "histogram"
    m.dead_letters.labels(reason="undecodable").inc()
    assert b'leadstage_dead_letters_total{reason="undecodable"} 1.0' in generate_latest(m.registry)


def test_signals_of_a_batch_become_the_right_series():
    m = staged()
    record_signals(m, [StageChanged(None, "cold", Cause.EVENT),
                       StageChanged(None, "cold", Cause.EVENT),
                       StageChanged("cold", "warm", Cause.TIME), TimeInStage("cold", 30.0),
                       Assessment("MARKETING", "hot", "warm", "overrated"),
                       SalesDecision("hot", "accepted"), SlaBreach("hot"),
                       HandoffResponse("hot", 120.0), Deal("hot", "won", 5000.0),
                       Deal("hot", "won", 2500.0), Deal(None, "lost", 0.0)])
    value = m.registry.get_sample_value
    assert value("leadstage_stage_changes_total",
                 {"from_stage": "none", "to_stage": "cold", "cause": "EVENT"}) == 2
    assert value("leadstage_stage_changes_total",
                 {"from_stage": "cold", "to_stage": "warm", "cause": "TIME"}) == 1
    assert value("leadstage_time_in_stage_seconds_sum", {"stage": "cold"}) == 30.0
    assert value("leadstage_assessments_total", {"team": "MARKETING", "assessed_stage": "hot",
                                                 "objective_stage": "warm",
                                                 "verdict": "overrated"}) == 1
    assert value("leadstage_sales_decisions_total", {"stage": "hot", "decision": "accepted"}) == 1
    assert value("leadstage_handoff_sla_breaches_total", {"stage": "hot"}) == 1
    assert value("leadstage_handoff_response_seconds_count", {"stage": "hot"}) == 1
    assert value("leadstage_deals_closed_total", {"stage": "hot", "outcome": "won"}) == 2
    assert value("leadstage_deals_closed_total", {"stage": "none", "outcome": "lost"}) == 1
    assert value("leadstage_deal_amount_total", {"stage": "hot"}) == 7500.0


def test_label_values_come_from_closed_sets_whatever_producers_write():
    m = staged()
    record_signals(m, [Assessment("SALES", f"stage-{i}", "warm", "underrated") for i in range(500)])
    record_signals(m, [StageChanged("cold", "no-such-stage", Cause.EVENT)])
    value = m.registry.get_sample_value
    assert value("leadstage_assessments_total", {"team": "SALES", "assessed_stage": "other",
                                                 "objective_stage": "warm",
                                                 "verdict": "underrated"}) == 500
    assessed = {s.labels["assessed_stage"] for f in m.registry.collect()
                if f.name == "leadstage_assessments" for s in f.samples}
    assert assessed == {"cold", "warm", "hot", "other"}
    assert value("leadstage_stage_changes_total",
                 {"from_stage": "cold", "to_stage": "other", "cause": "EVENT"}) == 1


def test_amounts_prometheus_would_refuse_are_not_passed_on():
    m = staged()
    record_signals(m, [Deal("hot", "won", amount)
                       for amount in (-1.0, float("-inf"), float("inf"), float("nan"), 250.0)])
    value = m.registry.get_sample_value
    assert value("leadstage_deal_amount_total", {"stage": "hot"}) == 250.0
    assert value("leadstage_deals_closed_total", {"stage": "hot", "outcome": "won"}) == 5


def test_rejected_property_values_are_counted_per_declared_property():
    m = Metrics()
    m.initialise(("cold", "hot"), None, verdict, ("industry", "employees"))
    record_signals(m, [PropertyRejected("industry"), PropertyRejected("industry"),
                       PropertyRejected("not-declared")])
    value = m.registry.get_sample_value
    assert value("leadstage_property_values_rejected_total", {"property": "industry"}) == 2
    assert value("leadstage_property_values_rejected_total", {"property": "employees"}) == 0
    assert value("leadstage_property_values_rejected_total", {"property": "other"}) == 1


def test_a_batch_of_durations_fills_the_buckets_as_one_observation_each_would():
    """Durations are gathered per stage and added per bucket; the series are those of one
    observe() per value, a negative duration counted as 0 as before."""
    m, reference = staged(), staged()
    seconds = [-5.0, 0.0, 0.4, 30.0, 30.0, 3_600.0, 86_400.0 * 40, float("inf")]
    record_signals(m, [TimeInStage("warm", s) for s in seconds]
                   + [HandoffResponse("hot", s) for s in seconds[:4]])
    for s in seconds:
        reference.time_in_stage.labels("warm").observe(max(0.0, s))
    for s in seconds[:4]:
        reference.handoff_response.labels("hot").observe(max(0.0, s))

    def samples(metrics: Metrics) -> list[tuple[str, dict[str, str], float]]:
        return [(s.name, s.labels, s.value) for f in metrics.registry.collect()
                if f.name in ("leadstage_time_in_stage_seconds",
                              "leadstage_handoff_response_seconds")
                for s in f.samples if not s.name.endswith("_created")]

    assert samples(m) == samples(reference)
    assert m.registry.get_sample_value("leadstage_time_in_stage_seconds_count",
                                       {"stage": "warm"}) == len(seconds)


def test_the_leads_gauge_follows_stage_moves_and_not_events_that_move_nothing():
    """Driven through the pipeline: a lead counts in one stage at a time, whatever events
    that leave its stage where it is come between its moves."""
    pipeline = lead_pipeline(sender=Sender(partitions=2))
    settled(pipeline, pipeline.rescan({0, 1}))  # the partitions this worker holds
    now = int(time.time() * 1000)
    offsets = iter(range(100))

    def batch(*events: tuple[str, str, str]) -> None:
        settled(pipeline, pipeline.process_batch([
            message(activity_record(event_id, lead, now - 60_000 + next(offsets), activity),
                    offset=next(offsets), partitions=2)
            for event_id, lead, activity in events]))

    def leads() -> dict[str, float]:
        return {stage: pipeline.metrics.registry.get_sample_value(
                    "leadstage_leads", {"stage": stage}) or 0.0 for stage in ("cold", "warm")}

    batch(("a1", "A", "CONTACTED"), ("b1", "B", "CONTACTED"), ("c1", "C", "CONTACTED"))
    assert leads() == {"cold": 3, "warm": 0}
    batch(("a2", "A", "PAGE_VIEWED"), ("b2", "B", "PRICING_VIEWED"), ("c2", "C", "CONTACTED"))
    assert leads() == {"cold": 2, "warm": 1}
    batch(("b3", "B", "WEBINAR_ATTENDED"), ("a3", "A", "DETAILS_PROVIDED"))
    assert leads() == {"cold": 1, "warm": 2}
