"""What the event schema says exists: activities and LeadActivity fields (read from `schemas/`).

The definitions loader checks names against this, so a definitions file can only speak of
activities and fields that producers can actually send.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from streams.core.resources import schema_dir

#: Opinions and free text: never facts (DESIGN §4).
SUBJECTIVE_ACTIVITIES = frozenset({"STAGE_ASSESSED"})
SUBJECTIVE_FIELDS = frozenset({"team", "assessed_stage", "reason", "attributes"})
#: (activity, field) pairs the input gate requires, so `latest` of them is none only without events.
REQUIRED_FIELDS = frozenset({("DECISION_TIMELINE_PROVIDED", "decision_by")})
#: The activities whose events carry a numeric field that `sum` and `max` may read (the
#: schema's doc for `amount`); a lead's history keeps windowed values for these only.
SUMMED = {"amount": ("BUDGET_CONFIRMED", "DEAL_WON")}
#: Fields every event has; `latest X.f` reads the other (per-activity) ones.
ENVELOPE_FIELDS = frozenset({"event_id", "lead_id", "occurred_at", "source", "activity"})


@dataclass(frozen=True)
class Catalog:
    activities: tuple[str, ...]
    #: field name -> value kind: "date", "timestamp", "decimal", "text", "count", "enum", "map"
    fields: dict[str, str]


def _kind(avro_type: object) -> str:
    if isinstance(avro_type, list):
        (inner,) = [t for t in avro_type if t != "null"]
        return _kind(inner)
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        if logical == "date":
            return "date"
        if logical == "timestamp-millis":
            return "timestamp"
        return {"enum": "enum", "map": "map"}.get(avro_type["type"], _kind(avro_type["type"]))
    return {"double": "decimal", "float": "decimal", "int": "count", "long": "count",
            "string": "text"}.get(str(avro_type), str(avro_type))


@cache
def load_catalog(folder: Path | None = None) -> Catalog:
    schema = json.loads(((folder or schema_dir()) / "LeadActivity.avsc").read_text())
    fields = {f["name"]: _kind(f["type"]) for f in schema["fields"]}
    activity = next(f for f in schema["fields"] if f["name"] == "activity")
    return Catalog(activities=tuple(activity["type"]["symbols"]), fields=fields)
