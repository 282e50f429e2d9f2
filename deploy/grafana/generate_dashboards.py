"""Generates the Grafana dashboards (grafanalib) into deploy/grafana/dashboards/*.json.

    .venv/bin/python deploy/grafana/generate_dashboards.py

The JSON is committed; a test fails when it is out of date with this file, and an integration
test runs every query below against a real Prometheus scraping a real worker.
"""

from __future__ import annotations

import json
from pathlib import Path

from grafanalib._gen import DashboardEncoder
from grafanalib.core import (
    BarGauge,
    Dashboard,
    GridPos,
    Stat,
    Table,
    Target,
    TimeSeries,
)

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
OUT = Path(__file__).parent / "dashboards"
SLA_SECONDS = 2 * 86400  # handoff.follow_up_within of the default definitions


def q(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> Target:
    return Target(expr=expr, legendFormat=legend, refId=ref, datasource=DATASOURCE,
                  instant=instant)


def series(title: str, targets: list[Target], pos: tuple[int, int, int, int], unit: str = "",
           description: str = "") -> TimeSeries:
    x, y, w, h = pos
    return TimeSeries(title=title, dataSource=DATASOURCE, targets=targets, unit=unit,
                      description=description, gridPos=GridPos(h=h, w=w, x=x, y=y))


def alignment() -> Dashboard:
    return Dashboard(
        title="Sales & Marketing Alignment", uid="leadstage-alignment",
        description="Do the teams agree with the objective stages, does sales follow up what "
                    "marketing hands over, and do hot leads win more often?",
        tags=["leadstage"], timezone="utc", refresh="30s",
        panels=[
            BarGauge(title="Leads by stage", dataSource=DATASOURCE,
                     targets=[q("sum by (stage) (leadstage_leads)", "{{stage}}", instant=True)],
                     gridPos=GridPos(h=7, w=8, x=0, y=0)),
            series("Stage changes per second", [q(
                "sum by (from_stage, to_stage) (rate(leadstage_stage_changes_total[5m]))",
                "{{from_stage}} → {{to_stage}}")], (8, 0, 10, 7), "ops"),
            Stat(title="Definitions version", dataSource=DATASOURCE,
                 targets=[q("max by (version) (leadstage_definitions_info)", "v{{version}}",
                            instant=True)],
                 reduceCalc="lastNotNull", textMode="name", gridPos=GridPos(h=7, w=6, x=18, y=0)),
            series("Agreement with the objective stage, per team", [
                q("team:leadstage_assessments:agree_ratio_rate1h", "{{team}} agrees")],
                (0, 7, 12, 8), "percentunit",
                "Share of a team's own stage assessments that match the objective stage."),
            series("Over- and under-rating, per team", [
                q("team:leadstage_assessments:overrated_ratio_rate1h", "{{team}} overrates"),
                q("team:leadstage_assessments:underrated_ratio_rate1h", "{{team}} underrates",
                  "B")], (12, 7, 12, 8), "percentunit"),
            Table(title="Assessed vs objective stage (last hour)", dataSource=DATASOURCE,
                  targets=[q("sum by (team, assessed_stage, objective_stage) "
                             "(increase(leadstage_assessments_total[1h]))", instant=True)],
                  gridPos=GridPos(h=8, w=12, x=0, y=15)),
            series("Sales acceptance, per stage", [
                q("stage:leadstage_sales_decisions:accepted_ratio_rate1h", "{{stage}}")],
                (12, 15, 12, 8), "percentunit"),
            series("Handoff response time against the SLA", [
                q("stage:leadstage_handoff_response_seconds:p50_rate1h", "{{stage}} median"),
                q("stage:leadstage_handoff_response_seconds:p90_rate1h", "{{stage}} p90", "B"),
                q(f"vector({SLA_SECONDS})", "SLA", "C")], (0, 23, 12, 8), "s"),
            series("Handoff SLA", [
                q("stage:leadstage_handoff:sla_compliance_ratio_rate1h", "{{stage}} compliance"),
                q("sum by (stage) (increase(leadstage_handoff_sla_breaches_total[1h]))",
                  "{{stage}} breaches (1h)", "B")], (12, 23, 12, 8)),
            series("Win rate at close, per stage", [
                q("stage:leadstage_deals:win_ratio_rate1h", "{{stage}}")],
                (0, 31, 12, 8), "percentunit"),
            series("Won amount, per stage (last hour)", [
                q("sum by (stage) (increase(leadstage_deal_amount_total[1h]))", "{{stage}}")],
                (12, 31, 12, 8)),
        ],
    ).auto_panel_ids()


def operations() -> Dashboard:
    return Dashboard(
        title="leadstage operations", uid="leadstage-operations",
        description="Is the stream processor keeping up, and is its input clean?",
        tags=["leadstage"], timezone="utc", refresh="30s",
        panels=[
            series("Events per second by source and outcome", [
                q("source_outcome:leadstage_events:rate1m", "{{source}} {{outcome}}")],
                (0, 0, 12, 8), "ops"),
            series("Dead letters per second by reason", [
                q("reason:leadstage_dead_letters:rate5m", "{{reason}}")], (12, 0, 12, 8), "ops"),
            series("Event lag (processing time minus occurred_at)", [
                q("histogram_quantile(0.5, sum by (le) "
                  "(rate(leadstage_event_lag_seconds_bucket[5m])))", "median"),
                q("histogram_quantile(0.99, sum by (le) "
                  "(rate(leadstage_event_lag_seconds_bucket[5m])))", "p99", "B")],
                (0, 8, 12, 8), "s"),
            series("Stage changes per second by cause", [
                q("cause:leadstage_stage_changes:rate5m", "{{cause}}")], (12, 8, 12, 8), "ops"),
            series("Workers up", [q('up{job="leadstage"}', "{{instance}}")], (0, 16, 12, 8)),
            series("Events per second per worker", [
                q('sum by (instance) (rate(leadstage_events_total{job="leadstage"}[1m]))',
                  "{{instance}}")], (12, 16, 12, 8), "ops"),
        ],
    ).auto_panel_ids()


def render(dashboard: Dashboard) -> str:
    return json.dumps(dashboard.to_json_data(), cls=DashboardEncoder, indent=2,
                      sort_keys=True) + "\n"


DASHBOARDS = {"alignment.json": alignment, "operations.json": operations}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, build in DASHBOARDS.items():
        (OUT / name).write_text(render(build()))


if __name__ == "__main__":
    main()
