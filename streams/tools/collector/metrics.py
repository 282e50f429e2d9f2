"""The collector's Prometheus metrics (DESIGN §9), on its own port; labels are closed sets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

#: leadstage_collect_events_total{outcome}
OUTCOMES = ("accepted", "rejected", "ignored", "duplicate", "failed")
_KAFKA = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class CollectorMetrics:
    def __init__(self, routes: tuple[str, ...]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("leadstage_collect_requests", "HTTP requests by route and status.",
                                ["route", "status"], registry=r)
        self.events = Counter("leadstage_collect_events", "Events by route and outcome.",
                              ["route", "outcome"], registry=r)
        self.kafka_seconds = Histogram(
            "leadstage_collect_kafka_seconds",
            "From handing a request's events to Kafka to the last acknowledgement.",
            buckets=_KAFKA, registry=r)
        for route in routes:
            for outcome in OUTCOMES:
                self.events.labels(route, outcome)
