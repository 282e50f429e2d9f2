"""Turns the core's signals into Prometheus metrics (DESIGN §6)."""

from __future__ import annotations

from collections.abc import Iterable

from streams.metrics import Metrics
from streams.stage_machine import Signal


def _label(stage: str | None) -> str:
    return "none" if stage is None else stage


def record(metrics: Metrics, signals: Iterable[Signal]) -> None:
    for s in signals:
        kind = s[0]
        if kind == "stage_change":
            metrics.stage_changes.labels(_label(s[1]), _label(s[2]), s[3]).inc()
        elif kind == "time_in_stage":
            metrics.time_in_stage.labels(s[1]).observe(s[2])
        elif kind == "assessment":
            metrics.assessments.labels(_label(s[1]), _label(s[2]), _label(s[3]), s[4]).inc()
        elif kind == "sales_decision":
            metrics.sales_decisions.labels(_label(s[1]), s[2]).inc()
        elif kind == "handoff_response":
            metrics.handoff_response.labels(_label(s[1])).observe(s[2])
        elif kind == "sla_breach":
            metrics.sla_breaches.labels(_label(s[1])).inc()
        elif kind == "deal":
            metrics.deals_closed.labels(_label(s[1]), s[2]).inc()
            if s[2] == "won":
                metrics.deal_amount.labels(_label(s[1])).inc(s[3])
