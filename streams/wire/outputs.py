"""The output records of a lead's stage changes (DESIGN §3), built in one place: every
LeadStageChanged of an outbox, and the lead's current LeadStage (None, a tombstone, when the lead
left the population or was erased)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from streams.wire.avro import AvroCodec


def lead_stage(change: Mapping[str, Any]) -> dict[str, Any] | None:
    """The LeadStage record a change leaves behind; None when the lead has no stage."""
    if change["stage"] is None:
        return None
    return {"lead_id": change["lead_id"], "stage": change["stage"], "since": change["changed_at"],
            "sequence": change["sequence"], "definitions_version": change["definitions_version"]}


def encode_outbox(outbox: Sequence[dict[str, Any]], codec: AvroCodec
                  ) -> tuple[list[bytes], bytes | None]:
    """(LeadStageChanged values in order, the LeadStage value after the last or a tombstone)."""
    changes = []  # a loop, not a comprehension: no function call per lead
    for change in outbox:
        changes.append(codec.encode("LeadStageChanged", change))
    current = lead_stage(outbox[-1])
    return changes, None if current is None else codec.encode("LeadStage", current)
