"""The metric names and labels of DESIGN §6 are a contract with dashboards and alerts."""

from prometheus_client import generate_latest

from streams.metrics import Metrics

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


def test_every_design_metric_is_exposed_with_exactly_its_labels():
    m = Metrics()
    exposed = {f.name + ("_total" if f.type == "counter" else ""): f.type
               for f in m.registry.collect()}
    assert set(exposed) == set(DESIGN)
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
    for name, metric in declared.items():
        assert set(metric._labelnames) == DESIGN[name], name
    assert exposed["leadstage_leads"] == "gauge"
    assert exposed["leadstage_event_lag_seconds"] == "histogram"
    m.dead_letters.labels(reason="undecodable").inc()
    assert b'leadstage_dead_letters_total{reason="undecodable"} 1.0' in generate_latest(m.registry)


def test_signals_of_a_batch_become_the_right_series():
    from streams.metrics_recorder import record

    m = Metrics()
    record(m, [("stage_change", None, "cold", "EVENT"), ("stage_change", None, "cold", "EVENT"),
               ("stage_change", "cold", "warm", "TIME"), ("time_in_stage", "cold", 30.0),
               ("assessment", "marketing", "hot", "warm", "overrated"),
               ("sales_decision", "hot", "accepted"), ("sla_breach", "hot"),
               ("handoff_response", "hot", 120.0),
               ("deal", "hot", "won", 5000.0), ("deal", "hot", "won", 2500.0),
               ("deal", None, "lost", 0.0)])
    value = m.registry.get_sample_value
    assert value("leadstage_stage_changes_total",
                 {"from_stage": "none", "to_stage": "cold", "cause": "EVENT"}) == 2
    assert value("leadstage_stage_changes_total",
                 {"from_stage": "cold", "to_stage": "warm", "cause": "TIME"}) == 1
    assert value("leadstage_time_in_stage_seconds_sum", {"stage": "cold"}) == 30.0
    assert value("leadstage_assessments_total", {"team": "marketing", "assessed_stage": "hot",
                                                 "objective_stage": "warm",
                                                 "verdict": "overrated"}) == 1
    assert value("leadstage_sales_decisions_total", {"stage": "hot", "decision": "accepted"}) == 1
    assert value("leadstage_handoff_sla_breaches_total", {"stage": "hot"}) == 1
    assert value("leadstage_handoff_response_seconds_count", {"stage": "hot"}) == 1
    assert value("leadstage_deals_closed_total", {"stage": "hot", "outcome": "won"}) == 2
    assert value("leadstage_deals_closed_total", {"stage": "none", "outcome": "lost"}) == 1
    assert value("leadstage_deal_amount_total", {"stage": "hot"}) == 7500.0
