"""Everything the worker keeps about one lead, and its compact serialised form (MessagePack).

Besides the activity history (facts), a lead carries its stage bookkeeping: the current stage,
since when, the last sequence number, the definitions version and evaluation time it was staged
under, handoff follow-up, its next review time, a few recent changes for lookups, and the
**outbox**: stage changes written with the state but not yet confirmed on the output topics.
"""

from __future__ import annotations

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


class LeadState(msgspec.Struct, array_like=True, tag=FORMAT):
    """Stored as a MessagePack array: FORMAT, then these fields in this order, the history last
    (as its own array). msgspec decodes a state straight into these classes: a state is read for
    every lead an input batch touches, and building it field by field cost as much as decoding."""

    lead_id: str
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
    recent_packed: list[bytes] = []
    outbox: list[dict[str, Any]] = []
    #: the commit batch that wrote the outbox; confirmed once the partition's watermark reaches it
    outbox_batch: int = 0
    #: the lead asked to be forgotten: only the sequence survives, so numbering never restarts
    erased: bool = False
    history: LeadHistory = msgspec.field(default_factory=LeadHistory)

    @property
    def recent_changes(self) -> list[dict[str, Any]]:
        return [_decode(b) for b in self.recent_packed]

    def remember(self, change: dict[str, Any]) -> None:
        self.outbox.append(change)
        self.recent_packed.append(_encode(change))
        del self.recent_packed[:-RECENT_CHANGES]


def dumps(state: LeadState) -> bytes:
    return _encode(state)


_decode_state = msgspec.msgpack.Decoder(LeadState).decode


def loads(data: bytes) -> LeadState:
    try:
        return _decode_state(data)
    except msgspec.ValidationError:
        return _loads_older(data)  # an older FORMAT (or values the typed decoder will not take)


def _loads_older(data: bytes) -> LeadState:
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
