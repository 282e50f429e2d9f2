"""The Python peer: the default definitions' stage job as a Quix Streams app, written the way its
documentation recommends (a StreamingDataFrame with a stateful `apply`, one state entry per lead
in RocksDB with a changelog topic, `to_topic` for the change records).

Fair settings, stated: Quix Streams' defaults (at-least-once, commit every 5 s, confluent-kafka
client, changelog topics on); the same single-object Avro input as leadstage, decoded with
fastavro, as leadstage decodes it; JSON change records. It does less than leadstage: no
de-duplication, no sweeps, no metrics, no Avro outputs.

The job (definitions/lead-stages.yaml): per lead, contacts, interest-signal times within 90 days
of the lead's latest event, the latest decision date (by occurred_at, then event id, as leadstage
breaks ties); evaluated at the lead's latest event time:
hot when a decision date lies between today and today + 6 months, else warm with an interest
signal in 90 days, else cold (only leads with a contact are staged); a change record on every
change of stage.

    python quix_peer.py BOOTSTRAP INPUT OUTPUT GROUP STATE_DIR SCHEMA EXPECTED

Runs until it has processed EXPECTED events, then prints {"first": t0, "done": t1, "events": n}
(monotonic seconds) and stops.
"""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
import json
import sys
import time
from io import BytesIO
from typing import Any

import fastavro
from quixstreams import Application
from quixstreams.models import Deserializer

DAY_MS = 86_400_000
WINDOW_MS = 90 * DAY_MS
INTEREST = frozenset({"DETAILS_PROVIDED", "PRICING_VIEWED", "CONTENT_DOWNLOADED",
                      "WEBINAR_ATTENDED", "DEMO_REQUESTED", "MEETING_HELD"})


def _strip_logical(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _strip_logical(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_strip_logical(s) for s in schema]
    return schema


class SingleObjectAvro(Deserializer):  # type: ignore[misc]  # quixstreams is untyped here
    """Avro single-object encoding (C3 01, 8-byte fingerprint, body) of one known schema."""

    def __init__(self, schema_path: str) -> None:
        super().__init__()
        with open(schema_path) as handle:
            self.schema = fastavro.parse_schema(_strip_logical(json.load(handle)))

    def __call__(self, value: bytes, ctx: Any) -> Any:
        return fastavro.schemaless_reader(BytesIO(value[10:]), self.schema)


def add_months(day: int, months: int) -> int:
    d = dt.date(1970, 1, 1) + dt.timedelta(days=day)
    total = d.year * 12 + d.month - 1 + months
    year, month = divmod(total, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return (dt.date(year, month + 1, min(d.day, last)) - dt.date(1970, 1, 1)).days


def stage_of(lead: dict[str, Any]) -> str | None:
    if lead["contacts"] < 1:
        return None
    now = lead["latest"]
    today = now // DAY_MS
    decision = lead["decision_by"]
    if decision is not None and today <= decision <= add_months(today, 6):
        return "hot"
    times = lead["times"]
    recent = bisect.bisect_right(times, now) - bisect.bisect_right(times, now - WINDOW_MS)
    return "warm" if recent >= 1 else "cold"


def main() -> int:
    bootstrap, source, target, group, state_dir, schema, expected = sys.argv[1:8]
    wanted = int(expected)
    app = Application(broker_address=bootstrap, consumer_group=group,
                      auto_offset_reset="earliest", state_dir=state_dir, loglevel="WARNING")
    events = app.topic(source, key_deserializer="str",
                       value_deserializer=SingleObjectAvro(schema))
    changes = app.topic(target, value_serializer="json")
    clock = {"first": 0.0, "done": 0.0, "events": 0}

    def apply(event: dict[str, Any], state: Any) -> dict[str, Any] | None:
        if clock["events"] == 0:
            clock["first"] = time.monotonic()
        clock["events"] += 1
        if clock["events"] >= wanted:
            clock["done"] = time.monotonic()
            app.stop()
        activity, at = event["activity"], event["occurred_at"]
        if activity == "ERASURE_REQUESTED":
            state.delete("lead")
            return None
        lead = state.get("lead") or {"contacts": 0, "times": [], "latest": 0,
                                     "decision_at": None, "decision_id": "", "decision_by": None,
                                     "stage": None}
        if activity == "CONTACTED":
            lead["contacts"] += 1
        elif activity in INTEREST:
            bisect.insort(lead["times"], at)
        elif activity == "DECISION_TIMELINE_PROVIDED" and (
                lead["decision_at"] is None
                or (at, event["event_id"]) > (lead["decision_at"], lead["decision_id"])):
            lead["decision_at"], lead["decision_id"] = at, event["event_id"]
            lead["decision_by"] = event["decision_by"]
        if at > lead["latest"]:
            lead["latest"] = at
            cut = bisect.bisect_right(lead["times"], at - WINDOW_MS)
            if cut:
                del lead["times"][:cut]
        stage = stage_of(lead)
        previous = lead["stage"]
        lead["stage"] = stage
        state.set("lead", lead)
        if stage == previous:
            return None
        return {"lead_id": event["lead_id"], "previous_stage": previous, "stage": stage,
                "changed_at": lead["latest"], "cause_event_id": event["event_id"]}

    sdf = app.dataframe(events)
    sdf = sdf.apply(apply, stateful=True).filter(lambda change: change is not None)
    sdf.to_topic(changes)
    app.run()
    print(json.dumps(clock), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
