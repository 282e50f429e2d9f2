"""Everything the worker keeps about one lead, and its compact serialised form (MessagePack).

Besides the activity history (facts), a lead carries its stage bookkeeping: the current stage,
since when, the last sequence number, the definitions version and evaluation time it was staged
under, handoff follow-up, its next review time, a few recent changes for lookups, and the
**outbox**: stage changes written with the state but not yet confirmed on the output topics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from streams.core.lead_history import LeadHistory, seen_key

#: 5: numeric totals and values, and properties (DESIGN §4.1); 4: long event ids kept as
#: digests (lead_history.seen_key); 3: recent changes stored pre-encoded; 2 stored them as maps.
#: 2 to 4 still load.
FORMAT = 5
RECENT_CHANGES = 5
#: Changes a state may hold unpublished: the worker publishes (commits) before a lead's outbox
#: grows past this, however many of its events one fetch brings.
OUTBOX_LIMIT = 8
#: No encoded state is larger. What a state holds is capped (lead_history's SEEN_CAP and
#: RECENT_CAP, RECENT_CHANGES, OUTBOX_LIMIT, the input limits of activity_validation and the
#: definitions limits of the loader), which keeps a worst-case state near 330 KiB; the worker
#: refuses to write a larger one, so a changelog record always fits the broker's 1 MiB limit.
MAX_STATE_BYTES = 512 * 1024
# msgspec writes the same MessagePack bytes as msgpack-python, faster (bench/README.md); a state
# is read and written for every lead an input batch touches.
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


@dataclass(slots=True)
class LeadState:
    lead_id: str
    history: LeadHistory = field(default_factory=LeadHistory)
    stage: str | None = None
    since: int = 0
    sequence: int = 0
    definitions_version: int = 0
    #: the lead's evaluation time never moves backwards (no flapping on late events)
    evaluated_at: int = 0
    #: when the handoff stage was entered, if the lead is in it and not yet followed up
    handoff_since: int | None = None
    handoff_breached: bool = False
    #: the earliest time at which time alone may change something (stage or SLA), or None
    next_review: int | None = None
    #: the last RECENT_CHANGES changes, each msgpack-encoded: only lookups decode them, so
    #: loading a lead for an event does not rebuild them (they were most of a state's bytes)
    recent_packed: list[bytes] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    #: the commit batch that wrote the outbox; confirmed once the partition's watermark reaches it
    outbox_batch: int = 0
    #: the lead asked to be forgotten: only the sequence survives, so numbering never restarts
    erased: bool = False

    @property
    def recent_changes(self) -> list[dict[str, Any]]:
        return [_decode(b) for b in self.recent_packed]

    def remember(self, change: dict[str, Any]) -> None:
        self.outbox.append(change)
        self.recent_packed.append(_encode(change))
        del self.recent_packed[:-RECENT_CHANGES]


def dumps(state: LeadState) -> bytes:
    h = state.history
    return _encode([
        FORMAT, state.lead_id, state.stage, state.since, state.sequence,
        state.definitions_version, state.evaluated_at, state.handoff_since,
        state.handoff_breached, state.next_review, state.recent_packed, state.outbox,
        state.outbox_batch, state.erased,
        [h.counts, h.first_at, h.last_at, h.recent, h.latest, h.seen, h.max_occurred_at,
         h.totals, h.value_times, h.value_amounts, h.properties],
    ])


def loads(data: bytes) -> LeadState:
    (fmt, lead_id, stage, since, sequence, version, evaluated_at, handoff_since, breached,
     next_review, recent, outbox, outbox_batch, erased, h) = _decode(data)
    if fmt == 2:
        recent = [_encode(change) for change in recent]
    elif fmt not in (3, 4, FORMAT):
        raise ValueError(f"unknown lead state format {fmt}")
    counts, first_at, last_at, recent_times, latest, seen, max_at = h[:7]
    if fmt < 4:
        seen = {seen_key(k): v for k, v in seen.items()}
    totals, value_times, value_amounts, properties = h[7:] if fmt >= 5 else ({}, {}, {}, {})
    history = LeadHistory(counts=counts, first_at=first_at, last_at=last_at,
                          recent=recent_times,
                          latest={k: (v[0], v[1], v[2]) for k, v in latest.items()},
                          seen=seen, max_occurred_at=max_at, totals=totals,
                          value_times=value_times, value_amounts=value_amounts,
                          properties={k: (v[0], v[1]) for k, v in properties.items()})
    return LeadState(lead_id=lead_id, history=history, stage=stage, since=since,
                     sequence=sequence, definitions_version=version, evaluated_at=evaluated_at,
                     handoff_since=handoff_since, handoff_breached=breached,
                     next_review=next_review, recent_packed=recent, outbox=outbox,
                     outbox_batch=outbox_batch, erased=erased)
