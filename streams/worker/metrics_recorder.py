"""Turns the core's signals into Prometheus metrics (DESIGN §6).

Every label value comes from a closed set: stages of the definitions (anything else, such as a
team's free-text `assessed_stage`, is "other"), enums of the schema and fixed words. Values that
Prometheus counters refuse (negative, NaN, infinite) are never passed on: recording metrics must
not fail after a batch's changes are published.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

from streams.adapters.histograms import observe_many
from streams.core.signals import (
    Assessment,
    Deal,
    HandoffResponse,
    PropertyRejected,
    SalesDecision,
    Signal,
    SlaBreach,
    StageChanged,
    TimeInStage,
    Trimmed,
)
from streams.worker.metrics import Metrics

_TEAMS = frozenset({"MARKETING", "SALES"})


def record_signals(metrics: Metrics, signals: Iterable[Signal]) -> None:
    """Counters are summed per label set first, and histogram values gathered per label set
    (one update per set and batch: labels() takes a lock and builds a key each time, and each
    observe() walks the buckets under a lock)."""
    counts: Counter[tuple[str, ...]] = Counter()
    amounts: dict[str, float] = defaultdict(float)
    #: (histogram, stage label) -> durations
    durations: dict[tuple[str, str], list[float]] = defaultdict(list)
    stage_label = metrics.stage_labels  # stage -> label value, subscripted in C
    for s in signals:
        if isinstance(s, StageChanged):
            # str() of the StrEnum is its value, without the call of Enum's `value` property
            counts[("stage_changes", stage_label[s.from_stage], stage_label[s.to_stage],
                    str(s.cause))] += 1
        elif isinstance(s, TimeInStage):
            durations[("time_in_stage", stage_label[s.stage])].append(max(0.0, s.seconds))
        elif isinstance(s, Assessment):
            team = s.team if s.team in _TEAMS else "other"
            counts[("assessments", team, stage_label[s.assessed_stage],
                    stage_label[s.objective_stage], s.verdict)] += 1
        elif isinstance(s, SalesDecision):
            counts[("sales_decisions", stage_label[s.stage], s.decision)] += 1
        elif isinstance(s, HandoffResponse):
            durations[("handoff_response", stage_label[s.stage])].append(max(0.0, s.seconds))
        elif isinstance(s, SlaBreach):
            counts[("sla_breaches", stage_label[s.stage])] += 1
        elif isinstance(s, Trimmed):
            counts[("trimmed", s.part)] += 1
        elif isinstance(s, PropertyRejected):
            name = s.property if s.property in metrics.property_labels else "other"
            counts[("property_rejected", name)] += 1
        elif isinstance(s, Deal):
            counts[("deals_closed", stage_label[s.stage], s.outcome)] += 1
            if s.outcome == "won" and math.isfinite(s.amount) and s.amount > 0:
                amounts[stage_label[s.stage]] += s.amount
    for (name, *labels), n in counts.items():
        getattr(metrics, name).labels(*labels).inc(n)
    for label, amount in amounts.items():
        metrics.deal_amount.labels(label).inc(amount)
    for (name, label), seconds in durations.items():
        observe_many(getattr(metrics, name).labels(label), seconds)
