"""Every Prometheus metric of DESIGN §6, with exactly those names and labels (never a lead id)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.wire.reasons import Reason

_SECONDS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 2 * 86400, 4 * 86400,
            7 * 86400, 30 * 86400, 90 * 86400)
#: Every reason a record can be dead-lettered for, pre-registered at zero.
DEAD_LETTER_REASONS = tuple(Reason)
#: Where a failure confined to one lead can happen (leadstage_lead_failures_total{where}).
FAILURE_PLACES = ("event", "sweep", "scan", "lookup", "metrics", "encode")
#: What a lead's state loses when it hits a bound (leadstage_lead_state_trimmed_total{part}).
TRIMMED_PARTS = ("event_ids", "activity_times")
_LAG = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter("leadstage_events", "Input events by outcome.",
                              ["source", "activity", "outcome"], registry=r)
        self.dead_letters = Counter("leadstage_dead_letters", "Records sent to the DLQ.",
                                    ["reason"], registry=r)
        self.stage_changes = Counter("leadstage_stage_changes", "Published stage changes.",
                                     ["from_stage", "to_stage", "cause"], registry=r)
        self.leads = Gauge("leadstage_leads", "Leads per current stage.", ["stage"], registry=r)
        self.time_in_stage = Histogram("leadstage_time_in_stage_seconds",
                                       "Time a lead spent in a stage it left.", ["stage"],
                                       buckets=_SECONDS, registry=r)
        self.assessments = Counter("leadstage_assessments", "Team opinions vs objective stage.",
                                   ["team", "assessed_stage", "objective_stage", "verdict"],
                                   registry=r)
        self.sales_decisions = Counter("leadstage_sales_decisions",
                                       "Sales accept/reject decisions.", ["stage", "decision"],
                                       registry=r)
        self.handoff_response = Histogram("leadstage_handoff_response_seconds",
                                          "Time from entering the handoff stage to first touch.",
                                          ["stage"], buckets=_SECONDS, registry=r)
        self.sla_breaches = Counter("leadstage_handoff_sla_breaches",
                                    "Handoffs without follow-up in time.", ["stage"], registry=r)
        self.deals_closed = Counter("leadstage_deals_closed", "Deals won or lost.",
                                    ["stage", "outcome"], registry=r)
        self.deal_amount = Counter("leadstage_deal_amount", "Amount of won deals.", ["stage"],
                                   registry=r)
        self.event_lag = Histogram("leadstage_event_lag_seconds",
                                   "Processing time minus occurred_at.", buckets=_LAG, registry=r)
        self.rerouted = Counter("leadstage_events_rerouted",
                                "Input records found on a partition other than their key's, "
                                "sent on to the right one.", registry=r)
        self.dead_letters_dropped = Counter(
            "leadstage_dead_letters_dropped", "Dead letters the DLQ topic refused (logged).",
            registry=r)
        self.lead_failures = Counter("leadstage_lead_failures",
                                     "Failures confined to one lead (its events dead-lettered "
                                     "or the lead quarantined).", ["where"], registry=r)
        self.quarantined = Gauge("leadstage_quarantined_leads",
                                 "Leads this worker stopped sweeping after a failure.",
                                 registry=r)
        self.property_rejected = Counter(
            "leadstage_property_values_rejected",
            "Attributes values that are not a value of their declared property (the property "
            "is left unchanged, the event otherwise applied).", ["property"], registry=r)
        self.property_labels: frozenset[str] = frozenset()
        self.trimmed = Counter("leadstage_lead_state_trimmed",
                               "Times a lead's state hit a size bound and dropped its oldest "
                               "entries.", ["part"], registry=r)
        #: stage -> its label value (set by initialise): a stage of the definitions is itself,
        #: no stage (None) is "none", anything else "other"
        self.stage_labels: StageLabels = StageLabels({None: "none", "none": "none"})
        self.definitions_info = Gauge("leadstage_definitions_info",
                                      "The definitions version in force.", ["version"],
                                      registry=r)

    def initialise(self, stages: tuple[str, ...], handoff_stage: str | None,
                   verdict: Callable[[str | None, str | None], str],
                   properties: tuple[str, ...] = ()) -> None:
        """Create every series whose label values are known up front, at zero, so rates and
        quantiles count the first events too (a series born at its first event is not)."""
        everywhere = ["none", *stages]
        labels: dict[str | None, str] = {s: s for s in everywhere}
        labels[None] = "none"
        self.stage_labels = StageLabels(labels)
        for cause in ("EVENT", "TIME", "DEFINITIONS"):
            for a in everywhere:
                for b in everywhere:
                    if a != b:
                        self.stage_changes.labels(a, b, cause)
        for stage in stages:
            self.time_in_stage.labels(stage)
            self.deal_amount.labels(stage)
            for decision in ("accepted", "rejected"):
                self.sales_decisions.labels(stage, decision)
            for outcome in ("won", "lost"):
                self.deals_closed.labels(stage, outcome)
        if handoff_stage is not None:
            self.handoff_response.labels(handoff_stage)
            self.sla_breaches.labels(handoff_stage)
        for team in ("MARKETING", "SALES"):
            for assessed in stages:
                for objective in everywhere:
                    o = None if objective == "none" else objective
                    self.assessments.labels(team, assessed, objective, verdict(assessed, o))
        for team in ("MARKETING", "SALES"):
            for objective in everywhere:
                o = None if objective == "none" else objective
                self.assessments.labels(team, "other", objective, verdict("other", o))
        for reason in DEAD_LETTER_REASONS:
            self.dead_letters.labels(reason)
        for place in FAILURE_PLACES:
            self.lead_failures.labels(place)
        for part in TRIMMED_PARTS:
            self.trimmed.labels(part)
        self.property_labels = frozenset(properties)
        for name in properties:
            self.property_rejected.labels(name)


class StageLabels(dict[str | None, str]):
    """stage -> label value, "other" for a stage not in it. A dict, so the compiled metrics
    recorder reads a label with a subscript in C (three per stage change), where a method of
    Metrics (an uncompiled module) would enter the interpreter."""

    def __missing__(self, stage: str | None) -> str:
        return "other"
