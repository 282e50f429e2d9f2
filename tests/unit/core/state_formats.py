"""Lead states written field by field as each format lays them out: the bytes the changelogs of
earlier versions hold, and the layout the current version must keep writing."""

from __future__ import annotations

from typing import Any

import msgspec

from streams.core.lead_state import LeadState


def _history(state: LeadState, fmt: int) -> list[Any]:
    h = state.history
    fields = [h.counts, h.first_at, h.last_at, h.recent, h.latest, h.seen, h.max_occurred_at]
    if fmt >= 5:
        fields += [h.totals, h.value_times, h.value_amounts, h.properties]
    return fields


def format_6(state: LeadState) -> bytes:
    return msgspec.msgpack.encode([
        6, state.lead_id, state.stage, state.since, state.sequence,
        state.definitions_version, state.evaluated_at, state.handoff_since,
        state.handoff_breached, state.next_review, state.recent_packed, state.last_change,
        state.outbox, state.outbox_batch, state.erased, _history(state, 6),
    ])


def written_as(state: LeadState, fmt: int, changes: list[dict[str, Any]]) -> bytes:
    """`state` as format `fmt` (2 to 5) wrote it, with `changes` (in full, oldest first) as its
    recent changes: maps in format 2, each pre-encoded from format 3."""
    recent = changes if fmt == 2 else [msgspec.msgpack.encode(c) for c in changes]
    return msgspec.msgpack.encode([
        fmt, state.lead_id, state.stage, state.since, state.sequence,
        state.definitions_version, state.evaluated_at, state.handoff_since,
        state.handoff_breached, state.next_review, recent, state.outbox,
        state.outbox_batch, state.erased, _history(state, fmt),
    ])
