"""The obvious Faust implementation, for comparison: one event at a time, the `avro` package,
a table write and an output send per event, default settings.

    BENCH_TOPIC=... BENCH_OUT=... faust -A bench.faust_baseline worker
"""

from __future__ import annotations

import io
import json
import os
from typing import Any, cast

import avro.io
import avro.schema
import faust

from streams.core.resources import schema_dir

SCHEMA = avro.schema.parse((schema_dir() / "LeadActivity.avsc").read_text())
READER = avro.io.DatumReader(SCHEMA)

app = faust.App(os.environ["BENCH_APP_ID"], broker=f"kafka://{os.environ['BENCH_BOOTSTRAP']}",
                store="rocksdb://", datadir=os.environ["BENCH_DATA_DIR"],
                web_port=int(os.environ.get("BENCH_WEB_PORT", "16400")), web_bind="127.0.0.1",
                topic_partitions=int(os.environ.get("BENCH_PARTITIONS", "8")))
source = app.topic(os.environ["BENCH_TOPIC"], key_serializer="raw", value_serializer="raw")
sink = app.topic(os.environ["BENCH_OUT"], key_serializer="raw", value_serializer="raw")
leads = app.Table("baseline-leads", default=dict, partitions=int(
    os.environ.get("BENCH_PARTITIONS", "8")))


@app.agent(source)
async def process(stream: faust.StreamT[bytes]) -> None:
    async for key, value in stream.items():
        record = cast(dict[str, Any], READER.read(avro.io.BinaryDecoder(io.BytesIO(value[10:]))))
        lead = dict(leads[key.decode()])
        counts = lead.setdefault("counts", {})
        counts[record["activity"]] = counts.get(record["activity"], 0) + 1
        leads[key.decode()] = lead
        await sink.send(key=key, value=json.dumps(
            {"lead_id": record["lead_id"], "contacts": counts.get("CONTACTED", 0)}).encode())
