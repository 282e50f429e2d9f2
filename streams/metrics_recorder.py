"""Turns the core's signals into Prometheus metrics (DESIGN §6).

Every label value comes from a closed set: stages of the definitions (anything else, such as a
team's free-text `assessed_stage`, is "other"), enums of the schema and fixed words. Values that
Prometheus counters refuse (negative, NaN, infinite) are never passed on: recording metrics must
not fail after a batch's changes are published.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

from streams.metrics import Metrics
from streams.stage_machine import Signal

_TEAMS = frozenset({"MARKETING", "SALES"})


def record(metrics: Metrics, signals: Iterable[Signal]) -> None:
    """Counters are summed per label set first (one update per set and batch: labels() takes a
    lock and builds a key each time); histograms get every value."""
    counts: Counter[tuple[Any, ...]] = Counter()
    amounts: Counter[str] = Counter()
    stage = metrics.stage_label
    for s in signals:
        kind = s[0]
        if kind == "stage_change":
            counts[("stage_changes", stage(s[1]), stage(s[2]), s[3])] += 1
        elif kind == "time_in_stage":
            metrics.time_in_stage.labels(stage(s[1])).observe(max(0.0, s[2]))
        elif kind == "assessment":
            team = s[1] if s[1] in _TEAMS else "other"
            counts[("assessments", team, stage(s[2]), stage(s[3]), s[4])] += 1
        elif kind == "sales_decision":
            counts[("sales_decisions", stage(s[1]), s[2])] += 1
        elif kind == "handoff_response":
            metrics.handoff_response.labels(stage(s[1])).observe(max(0.0, s[2]))
        elif kind == "sla_breach":
            counts[("sla_breaches", stage(s[1]))] += 1
        elif kind == "trimmed":
            counts[("trimmed", s[1])] += 1
        elif kind == "deal":
            counts[("deals_closed", stage(s[1]), s[2])] += 1
            amount = s[3]
            if s[2] == "won" and isinstance(amount, int | float) and math.isfinite(amount) \
                    and amount > 0:
                amounts[stage(s[1])] += amount
    for (name, *labels), n in counts.items():
        getattr(metrics, name).labels(*labels).inc(n)
    for label, amount in amounts.items():
        metrics.deal_amount.labels(label).inc(amount)
