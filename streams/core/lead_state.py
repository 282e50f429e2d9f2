"""Everything the worker keeps about one lead, and its compact serialised form (MessagePack).

Besides the activity history (facts), a lead carries its stage bookkeeping: the current stage,
since when, the last sequence number, the definitions version and evaluation time it was staged
under, handoff follow-up, its next review time, its recent changes for lookups (the latest in
full, the others in brief), and the **outbox**: stage changes written with the state but not yet
confirmed on the output topics.
"""

from __future__ import annotations

from typing import Any

import msgspec

from streams.core.lead_history import Activity, LeadHistory, seen_key

#: 7: a history's activity summaries in one map (lead_history.Activity), its event ids in one
#: string and their times in one byte string, and the changes of the outbox and last_change as
#: arrays of CHANGE_FIELDS, not maps; 6: recent changes in brief but the latest; 5: numeric
#: totals and values, and properties (DESIGN §4.1); 4: long event ids kept as digests
#: (lead_history.seen_key); 3: recent changes stored pre-encoded; 2 stored them as maps. 2 to 6
#: still load.
FORMAT = 7
RECENT_CHANGES = 5
#: What a recent change keeps once a later one is made: its reason and facts (most of a change's
#: bytes) are on the stage-changes topic, and a state is written to the changelog at every event.
BRIEF_FIELDS = ("sequence", "changed_at", "previous_stage", "stage", "cause", "cause_event_id",
                "definitions_version")
#: A change as the outbox and last_change keep it: these fields, in this order, as a MessagePack
#: array. Its event_id and lead_id are the lead's, and a state is written at every event: the
#: field names of a map cost about 100 bytes per change.
CHANGE_FIELDS = ("sequence", "previous_stage", "stage", "changed_at", "cause", "cause_event_id",
                 "definitions_version", "reason", "facts")
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


class LeadState(msgspec.Struct, array_like=True, tag=FORMAT, dict=True):
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
    #: the last RECENT_CHANGES changes in brief (BRIEF_FIELDS, each a msgpack array): only
    #: lookups decode them, so loading a lead for an event does not rebuild them
    recent_packed: list[bytes] = []
    #: the latest change in full (a msgpack map), b"" before the first and while the outbox
    #: holds it: a state written with a change carries its ~400 bytes once
    last_change: bytes = b""
    #: stage changes written with the state but not yet confirmed on the output topics, each a
    #: packed map kept as it was read (msgspec.Raw): a loaded outbox is nearly always confirmed
    #: already and dropped unread, and writing it again copies bytes. `unpublished` unpacks it.
    outbox: list[msgspec.Raw] = []
    #: the commit batch that wrote the outbox; confirmed once the partition's watermark reaches it
    outbox_batch: int = 0
    #: the lead asked to be forgotten: only the sequence survives, so numbering never restarts
    erased: bool = False
    history: LeadHistory = msgspec.field(default_factory=LeadHistory)

    @property
    def recent_changes(self) -> list[dict[str, Any]]:
        """Oldest first: the latest as it was published, the others without reason and facts."""
        latest = self.outbox[-1] if self.outbox else self.last_change
        full = self.recent_packed and latest
        changes: list[dict[str, Any]] = []
        for packed in self.recent_packed[:-1] if full else self.recent_packed:
            change = dict(zip(BRIEF_FIELDS, _decode(packed), strict=True))
            changes.append({"event_id": f"{self.lead_id}:{change['sequence']}",
                            "lead_id": self.lead_id, **change})
        if full:
            changes.append(self._unpack(latest))
        return changes

    def add_to_outbox(self, change: dict[str, Any]) -> None:
        """Add a change to the outbox (and the recent ones)."""
        packed = msgspec.Raw(_pack(change))
        self.outbox.append(packed)
        # the change as made, so publishing it does not unpack it again; by the Raw's identity
        # (held here, so no other object takes its id), whatever replaces outbox entries
        self.__dict__.setdefault("made", {})[id(packed)] = (packed, change)
        self.recent_packed.append(_brief(change))
        del self.recent_packed[:-RECENT_CHANGES]
        self.last_change = b""

    def unpublished(self) -> list[dict[str, Any]]:
        """The outbox's changes, oldest first."""
        made: dict[int, tuple[msgspec.Raw, dict[str, Any]]] = self.__dict__.get("made", {})
        changes = []
        for packed in self.outbox:
            kept = made.get(id(packed))
            changes.append(self._unpack(packed) if kept is None else kept[1])
        return changes

    def _unpack(self, packed: bytes | msgspec.Raw) -> dict[str, Any]:
        """A change as it was made, from its CHANGE_FIELDS."""
        fields = _decode(packed)
        change = {"event_id": f"{self.lead_id}:{fields[0]}", "lead_id": self.lead_id}
        change.update(zip(CHANGE_FIELDS, fields, strict=True))
        return change

    def published(self) -> None:
        """The outbox is confirmed on the output topics: empty it, keeping its last change as
        `last_change`."""
        if self.outbox:
            self.last_change = bytes(self.outbox[-1])
            self.outbox = []
        self.__dict__.pop("made", None)

    def forget_changes(self) -> None:
        self.recent_packed = []
        self.last_change = b""


def _pack(change: dict[str, Any]) -> bytes:
    """A change as the outbox and last_change keep it (None for a field an older version did
    not write)."""
    return _encode([change.get(name) for name in CHANGE_FIELDS])


def _brief(change: dict[str, Any]) -> bytes:
    """A change as recent_packed keeps it (None for a field an older version did not write)."""
    return _encode([change.get(name) for name in BRIEF_FIELDS])


def dumps(state: LeadState) -> bytes:
    return _encode(state)


_decode_state = msgspec.msgpack.Decoder(LeadState).decode


def loads(data: bytes) -> LeadState:
    try:
        return _decode_state(data)
    except msgspec.ValidationError:
        return _loads_older(data)  # an older FORMAT (or values the typed decoder will not take)


def _loads_older(data: bytes) -> LeadState:
    fields = _decode(data)
    if fields[0] in (6, FORMAT):
        (fmt, lead_id, stage, since, sequence, version, evaluated_at, handoff_since, breached,
         next_review, recent, last_change, outbox, outbox_batch, erased, h) = fields
    else:
        (fmt, lead_id, stage, since, sequence, version, evaluated_at, handoff_since, breached,
         next_review, changes, outbox, outbox_batch, erased, h) = fields
        if fmt not in (2, 3, 4, 5):
            raise ValueError(f"unknown lead state format {fmt}")
        if fmt > 2:  # pre-encoded maps
            changes = [_decode(change) for change in changes]
        recent = [_brief(change) for change in changes]
        last_change = _pack(changes[-1]) if changes else b""
    if fmt == 6 and last_change:
        last_change = _pack(_decode(last_change))  # a packed map until format 7
    if fmt == FORMAT:
        (activities, seen_ids, seen_at, max_at, totals, value_times, value_amounts,
         properties) = h
        history = LeadHistory({k: Activity(*v) for k, v in activities.items()}, seen_ids,
                              seen_at, max_at, totals, value_times, value_amounts)
    else:  # five maps by activity, and the ids a map (id -> occurred_at)
        totals, value_times, value_amounts, properties = h[7:] if fmt >= 5 else ({}, {}, {}, {})
        history = LeadHistory(_activities(h[:5]), max_occurred_at=h[6], totals=totals,
                              value_times=value_times, value_amounts=value_amounts)
        # seen_key: format 3 kept long ids whole, and a key may not hold the separator now
        history.keep_seen({seen_key(k): v for k, v in h[5].items()})
    history.properties = {k: (v[0], v[1]) for k, v in properties.items()}
    return LeadState(lead_id=lead_id, history=history, stage=stage, since=since,
                     sequence=sequence, definitions_version=version, evaluated_at=evaluated_at,
                     handoff_since=handoff_since, handoff_breached=breached,
                     next_review=next_review, recent_packed=recent,
                     last_change=b"" if outbox else last_change,  # outbox[-1] is the latest
                     outbox=[msgspec.Raw(_pack(change) if fmt < 7 else _encode(change))
                             for change in outbox],
                     outbox_batch=outbox_batch, erased=erased)


def _activities(maps: list[dict[str, Any]]) -> dict[str, Activity]:
    """The per-activity maps of formats 2 to 6 (counts, first and last occurred_at, recent
    times, latest event), as one summary per activity, in the order they were first seen."""
    counts, first_at, last_at, recent, latest = maps
    activities = {}
    for activity, count in counts.items():
        at, event_id, kept = latest[activity]
        activities[activity] = Activity(count, first_at[activity], last_at[activity],
                                        recent.get(activity, []), at, event_id, kept)
    return activities
