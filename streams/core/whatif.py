"""What-if: which leads would be in which stage under two definitions files (pure core).

Events are replayed into each lead's history (duplicates counted once, out-of-order events placed
by occurred_at, properties set as each file declares them), then every lead is staged under both
files at the same evaluation time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streams.core.definitions.compiler import CompiledDefinitions
from streams.core.lead_history import LeadHistory
from streams.core.routing import Route, route
from streams.core.stage_machine import StageMachine


@dataclass
class Diff:
    at: int
    events: int
    leads: int
    #: (stage under OLD, stage under NEW) -> lead ids; None = outside the population
    moves: dict[tuple[str | None, str | None], list[str]] = field(default_factory=dict)

    def changed(self) -> dict[tuple[str | None, str | None], list[str]]:
        return {k: v for k, v in self.moves.items() if k[0] != k[1]}

    def as_dict(self, show_leads: bool) -> dict[str, Any]:
        rows = []
        for (old, new), leads in sorted(self.moves.items(), key=lambda kv: (-len(kv[1]),
                                                                              str(kv[0]))):
            row: dict[str, Any] = {"from": old, "to": new, "leads": len(leads)}
            if show_leads:
                row["lead_ids"] = sorted(leads)
            rows.append(row)
        return {"evaluated_at": self.at, "events": self.events, "leads": self.leads,
                "moved": sum(len(v) for v in self.changed().values()), "pairs": rows}


def replay(events: Iterable[dict[str, Any]], machine: StageMachine | None = None
           ) -> tuple[dict[str, LeadHistory], int, int]:
    """(history per lead, events read, latest occurred_at); with `machine`, the properties its
    definitions declare are set too."""
    histories: dict[str, LeadHistory] = {}
    count, latest = 0, 0
    for event in events:
        count += 1
        activity = event["activity"]
        lead = event["lead_id"]
        kind = route(activity)
        if kind is Route.ERASE:
            histories.pop(lead, None)
            continue
        if kind is not Route.FACT:
            continue  # opinions never move a stage; unknown activities are ignored
        history = histories.get(lead)
        if history is None:
            history = histories[lead] = LeadHistory()
        if history.apply(event) and machine is not None and event.get("attributes"):
            machine.set_properties(history, event, [])
        if event["occurred_at"] > latest:
            latest = event["occurred_at"]
    return histories, count, latest


def diff(old: CompiledDefinitions, new: CompiledDefinitions, events: Iterable[dict[str, Any]],
         at: int | None = None) -> Diff:
    if old.definitions.properties == new.definitions.properties:
        histories, count, latest = replay(events, StageMachine(old))
        new_histories = histories
    else:  # each file sets its own properties
        listed = list(events)
        histories, count, latest = replay(listed, StageMachine(old))
        new_histories = replay(listed, StageMachine(new))[0]
    when = latest if at is None else at
    moves: dict[tuple[str | None, str | None], list[str]] = defaultdict(list)
    for lead, history in histories.items():
        moves[(old.evaluate(history, when)[0],
               new.evaluate(new_histories[lead], when)[0])].append(lead)
    return Diff(at=when, events=count, leads=len(histories), moves=dict(moves))
