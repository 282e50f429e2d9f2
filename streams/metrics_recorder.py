"""Turns the core's signals into Prometheus metrics (DESIGN §6)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from streams.metrics import Metrics
from streams.stage_machine import Signal


def _label(stage: str | None) -> str:
    return "none" if stage is None else stage


def record(metrics: Metrics, signals: Iterable[Signal]) -> None:
    """Counters are summed per label set first (one update per set and batch: labels() takes a
    lock and builds a key each time); histograms get every value."""
    counts: Counter[tuple[Any, ...]] = Counter()
    for s in signals:
        kind = s[0]
        if kind == "stage_change":
            counts[("stage_changes", _label(s[1]), _label(s[2]), s[3])] += 1
        elif kind == "time_in_stage":
            metrics.time_in_stage.labels(s[1]).observe(s[2])
        elif kind == "assessment":
            counts[("assessments", _label(s[1]), _label(s[2]), _label(s[3]), s[4])] += 1
        elif kind == "sales_decision":
            counts[("sales_decisions", _label(s[1]), s[2])] += 1
        elif kind == "handoff_response":
            metrics.handoff_response.labels(_label(s[1])).observe(s[2])
        elif kind == "sla_breach":
            counts[("sla_breaches", _label(s[1]))] += 1
        elif kind == "deal":
            counts[("deals_closed", _label(s[1]), s[2])] += 1
            if s[2] == "won":
                metrics.deal_amount.labels(_label(s[1])).inc(s[3])
    for (name, *labels), n in counts.items():
        getattr(metrics, name).labels(*labels).inc(n)
