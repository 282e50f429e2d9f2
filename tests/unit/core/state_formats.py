"""Lead states written field by field as each format lays them out: the bytes the changelogs of
earlier versions hold, and the layout the current version must keep writing."""

from __future__ import annotations

from typing import Any

import msgspec

from streams.core.lead_state import LeadState


def _history(state: LeadState, fmt: int) -> list[Any]:
    h = state.history
    values = [h.totals, h.value_times, h.value_amounts, h.properties]
    if fmt == 7:
        activities = {name: [a.count, a.first_at, a.last_at, a.recent, a.latest_at,
                             a.latest_id, a.latest] for name, a in h.activities.items()}
        return [activities, h.seen_ids, h.seen_at, h.max_occurred_at, *values]
    # formats 2 to 6: five maps keyed by activity; an activity's recent times only while any
    # were within retention
    acts = h.activities
    fields = [{k: a.count for k, a in acts.items()}, {k: a.first_at for k, a in acts.items()},
              {k: a.last_at for k, a in acts.items()},
              {k: a.recent for k, a in acts.items() if a.recent},
              {k: [a.latest_at, a.latest_id, a.latest] for k, a in acts.items()},
              h.seen, h.max_occurred_at]
    return fields + values if fmt >= 5 else fields


def format_7(state: LeadState) -> bytes:
    return _since_6(state, 7)


def format_6(state: LeadState) -> bytes:
    return _since_6(state, 6)


def _since_6(state: LeadState, fmt: int) -> bytes:
    last_change, outbox = state.last_change, state.outbox
    if fmt == 6 and last_change:  # the latest change as a packed map
        last_change = msgspec.msgpack.encode(state.recent_changes[-1])
    return msgspec.msgpack.encode([
        fmt, state.lead_id, state.stage, state.since, state.sequence,
        state.definitions_version, state.evaluated_at, state.handoff_since,
        state.handoff_breached, state.next_review, state.recent_packed, last_change,
        outbox if fmt == 7 else state.unpublished(), state.outbox_batch, state.erased,
        _history(state, fmt),
    ])


def written_as(state: LeadState, fmt: int, changes: list[dict[str, Any]]) -> bytes:
    """`state` as format `fmt` (2 to 5) wrote it, with `changes` (in full, oldest first) as its
    recent changes: maps in format 2, each pre-encoded from format 3."""
    recent = changes if fmt == 2 else [msgspec.msgpack.encode(c) for c in changes]
    return msgspec.msgpack.encode([
        fmt, state.lead_id, state.stage, state.since, state.sequence,
        state.definitions_version, state.evaluated_at, state.handoff_since,
        state.handoff_breached, state.next_review, recent, state.unpublished(),
        state.outbox_batch, state.erased, _history(state, fmt),
    ])
