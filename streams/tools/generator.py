"""Synthetic, realistic lead histories in the JSON-lines form of DESIGN §3.

Each lead has an engagement level that drives how often it visits, downloads, joins webinars,
views pricing, asks for demos and meets sales; some give a decision date (near or far), some
confirm a budget. Marketing and sales assess leads against the objective stage the agreed
definitions give at that moment (computed with the pure core), marketing with an optimism bias.
Sales accepts or rejects hot leads (mostly within the agreed follow-up time, sometimes late), and
some deals are won or lost. The CRM knows most companies: its events carry their headcount,
industry and segment as attributes (`employees`, `industry`, `crm_segment`), which definitions
may declare as properties (DESIGN §4.1). Deterministic for a given seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from streams.core.calendar import (
    MS_PER_DAY,
    MS_PER_HOUR,
    format_date,
    format_timestamp,
    parse_date,
)
from streams.core.definitions.compiler import CompiledDefinitions
from streams.core.lead_state import LeadState
from streams.core.stage_machine import StageMachine

ENGAGEMENT = {  # share of leads, mean active-interest events per month
    "low": (0.50, 0.3),
    "medium": (0.35, 2.0),
    "high": (0.15, 6.0),
}
INTEREST = ["PAGE_VIEWED", "EMAIL_CLICKED", "CONTENT_DOWNLOADED", "WEBINAR_ATTENDED",
            "PRICING_VIEWED", "DEMO_REQUESTED", "DETAILS_PROVIDED"]
INTEREST_WEIGHTS = [40, 20, 12, 6, 10, 5, 7]
REASONS_LOST = ["price", "timing", "competitor", "no budget"]
INDUSTRIES = ["software", "finance", "healthcare", "retail", "manufacturing", "other"]
INDUSTRY_WEIGHTS = [30, 15, 12, 15, 13, 15]
#: share of companies the CRM knows nothing about yet
UNKNOWN_COMPANY = 0.2


def segment_of(employees: int) -> str:
    return "smb" if employees < 200 else ("mid_market" if employees < 1000 else "enterprise")


class Generator:
    def __init__(self, compiled: CompiledDefinitions, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.machine = StageMachine(compiled)
        self.stage_names = list(compiled.definitions.stage_names)
        self._seq = 0
        self.seed = seed

    def event(self, lead: str, at: int, activity: str, source: str, **extra: Any
              ) -> dict[str, Any]:
        """One event with a fresh, deterministic event id."""
        self._seq += 1
        event = {"event_id": f"{source.lower()}-{self.seed}-{self._seq}", "lead_id": lead,
                 "occurred_at": at, "source": source, "activity": activity}
        event.update({k: v for k, v in extra.items() if v is not None})
        return event

    def company(self, lead_id: str) -> dict[str, str]:
        """The CRM's record of the lead's company (empty when it has none): its own random
        stream, so firmographics leave the rest of a history unchanged."""
        rng = random.Random(f"{self.seed}:{lead_id}")
        if rng.random() < UNKNOWN_COMPANY:
            return {}
        employees = max(1, int(rng.lognormvariate(4.5, 1.6)))
        return {"employees": str(employees),
                "industry": rng.choices(INDUSTRIES, INDUSTRY_WEIGHTS)[0],
                "crm_segment": segment_of(employees)}

    def lead(self, lead_id: str, start: int, end: int) -> list[dict[str, Any]]:
        """One lead's events between start and end (epoch ms), in time order."""
        rng = self.rng
        level = rng.choices(list(ENGAGEMENT), [v[0] for v in ENGAGEMENT.values()])[0]
        per_month = ENGAGEMENT[level][1]
        events: list[dict[str, Any]] = []
        at = start
        if rng.random() < 0.9:  # most leads contact us; the rest only browse (no stage)
            events.append(self.event(lead_id, at, "CONTACTED", rng.choice(["WEB", "CRM"])))
        months = max((end - start) / (30 * MS_PER_DAY), 0.1)
        for _ in range(int(rng.expovariate(1 / (per_month * months))) + 1):
            when = rng.randint(start, end)
            activity = rng.choices(INTEREST, INTEREST_WEIGHTS)[0]
            events.append(self.event(lead_id, when, activity, "WEB"))
        decides = {"low": 0.03, "medium": 0.2, "high": 0.6}[level]
        if rng.random() < decides:
            when = rng.randint(start, end)
            horizon = rng.choice([20, 45, 90, 150, 240, 365, 540])
            events.append(self.event(lead_id, when, "DECISION_TIMELINE_PROVIDED", "CRM",
                                      decision_by=format_date(when // MS_PER_DAY + horizon)))
            if level == "high" and rng.random() < 0.5:
                events.append(self.event(
                    lead_id, min(end, when + rng.randint(0, 10) * MS_PER_DAY), "BUDGET_CONFIRMED",
                    "CRM", amount=float(rng.randrange(5, 200) * 1000), currency="EUR"))
        company = self.company(lead_id)
        if company:  # the CRM records the contact with the company's data, and keeps it on
            for event in events:
                if event["activity"] == "CONTACTED":
                    event["source"] = "CRM"
                if event["source"] == "CRM":
                    event["attributes"] = dict(company)
        events.sort(key=lambda e: e["occurred_at"])
        return self._with_opinions_and_sales(lead_id, events, end)

    def _with_opinions_and_sales(self, lead_id: str, events: list[dict[str, Any]], end: int
                                 ) -> list[dict[str, Any]]:
        """Replay through the core to add assessments, sales decisions and deals."""
        rng, machine = self.rng, self.machine
        state = LeadState(lead_id)
        out: list[dict[str, Any]] = []
        hot_since: int | None = None
        for event in events:
            out.append(event)
            machine.apply(state, _core_event(event), [])
            stage = state.stage
            if stage is None:
                continue
            if rng.random() < 0.06:  # marketing: optimistic
                out.append(self._assessment(lead_id, event["occurred_at"], "MARKETING", stage,
                                            up=0.45, down=0.05))
            if rng.random() < 0.04:  # sales: a little pessimistic
                out.append(self._assessment(lead_id, event["occurred_at"], "SALES", stage,
                                            up=0.05, down=0.2))
            if stage == "hot" and hot_since is None:
                hot_since = event["occurred_at"]
                out.extend(self._sales(lead_id, hot_since, end))
        out.sort(key=lambda e: e["occurred_at"])
        return out

    def _assessment(self, lead_id: str, at: int, team: str, objective: str, up: float,
                    down: float) -> dict[str, Any]:
        rank = self.stage_names.index(objective)
        roll = self.rng.random()
        if roll < up and rank + 1 < len(self.stage_names):
            rank += 1
        elif roll > 1 - down and rank > 0:
            rank -= 1
        return self.event(lead_id, at, "STAGE_ASSESSED", "CRM", team=team,
                           assessed_stage=self.stage_names[rank])

    def _sales(self, lead_id: str, hot_since: int, end: int) -> list[dict[str, Any]]:
        rng = self.rng
        delay = int(rng.choice([0.2, 0.5, 1, 1, 1.5, 2.5, 4]) * MS_PER_DAY)  # some miss the SLA
        when = hot_since + delay + rng.randint(0, 3 * MS_PER_HOUR)
        if when > end:
            return []
        accepted = rng.random() < 0.8
        out = [self.event(lead_id, when, "SALES_ACCEPTED" if accepted else "SALES_REJECTED",
                           "CRM", reason=None if accepted else "not a fit")]
        closes = when + rng.randint(5, 60) * MS_PER_DAY
        if accepted and closes <= end and rng.random() < 0.6:
            won = rng.random() < 0.55
            out.append(self.event(
                lead_id, closes, "DEAL_WON" if won else "DEAL_LOST", "CRM",
                amount=float(rng.randrange(5, 200) * 1000) if won else None,
                currency="EUR" if won else None,
                reason=None if won else rng.choice(REASONS_LOST)))
        return out

    def history(self, leads: int, days: int, end: int) -> Iterator[dict[str, Any]]:
        """Every lead's events, leads started uniformly over the last `days` days."""
        start_span = days * MS_PER_DAY
        for i in range(leads):
            lead_id = f"L-{self.seed:x}-{i:06d}"
            start = end - self.rng.randint(0, start_span)
            yield from self.lead(lead_id, start, end)


def _core_event(event: dict[str, Any]) -> dict[str, Any]:
    """The generator's JSON-style event as the core's record (dates as day numbers)."""
    out = dict(event)
    if "decision_by" in out:
        out["decision_by"] = parse_date(out["decision_by"])
    return out


def as_json(event: dict[str, Any]) -> dict[str, Any]:
    """The JSON-lines form: occurred_at as ISO-8601 UTC."""
    return {**event, "occurred_at": format_timestamp(event["occurred_at"])}
