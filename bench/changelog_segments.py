"""What a restore replays, against the changelog's segment size (README "Sizing").

    BENCH_LEADS=1000000 BENCH_EVENTS=3000000 .venv/bin/python bench/changelog_segments.py \
        [SEGMENT_BYTES ...]     # default: 1073741824 (Kafka's own default) and 67108864

Kafka never compacts a partition's active segment, so a worker restoring its leads replays
every state written to that segment, superseded or not, besides the compacted part. For each
segment size, on one pre-produced topic (the `make bench` workload at BENCH_LEADS and
BENCH_EVENTS): a worker (LEADSTAGE_CHANGELOG_SEGMENT_BYTES) handles every event; 30 s for the
broker's log cleaner (it looks every 15 s); then the changelog's records written, the records
left (what a restore reads), their bytes; then kill -9, the local state deleted, and a restart
under the same instance id timed until `/healthz` is ready. Writes
bench/changelog-segments.json. Measures and reports; asserts nothing.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from local_kafka import bench_kafka, create_topics  # noqa: E402
from run import (  # noqa: E402
    BENCH_INSTANCE_ID,
    EVENTS,
    LEADS,
    PARTITIONS,
    LeadstageWorker,
    end_total,
    fresh_work,
    log_bytes,
    produce,
    records,
    records_on_disk,
)

from streams.adapters.settings import Settings  # noqa: E402
from streams.adapters.topics import changelog_topic  # noqa: E402

#: the broker's log cleaner looks for logs to clean every 15 s (log.cleaner.backoff.ms)
CLEANER_WAIT_S = 30
KAFKA_DEFAULT = 2**30


def main() -> int:
    console = Console()
    sizes = [int(a) for a in sys.argv[1:]] or [KAFKA_DEFAULT, 64 * 2**20]
    fresh_work()
    with bench_kafka(console.print) as bootstrap:
        name = f"segments-{random.randrange(10**6)}"
        topic = f"{name}-input"
        create_topics(bootstrap, [topic], PARTITIONS)
        with console.status(f"generating and producing {EVENTS} events for {LEADS} leads"):
            recs = records(EVENTS, LEADS)
            produce(bootstrap, topic, recs)
        events = len(recs)
        rows = []
        for size in sizes:
            run = f"{name}-{size}"
            worker = LeadstageWorker(bootstrap, topic, run,
                                     LEADSTAGE_INSTANCE_ID=BENCH_INSTANCE_ID,
                                     LEADSTAGE_CHANGELOG_SEGMENT_BYTES=str(size))
            try:
                with console.status(f"segments of {size:,} bytes: the worker"):
                    rate = worker.throughput(events)
                    time.sleep(CLEANER_WAIT_S)
                changelog = changelog_topic(Settings.from_env(worker.env))
                written = end_total(bootstrap, changelog)
                left = records_on_disk(bootstrap, changelog)
                size_on_disk = log_bytes(changelog)
                with console.status(f"segments of {size:,} bytes: recovery"):
                    recovery = worker.restart_empty(BENCH_INSTANCE_ID)
            finally:
                worker.stop()
                shutil.rmtree(worker.env["LEADSTAGE_DATA_DIR"], ignore_errors=True)
            row = {"segment_bytes": size, "events_per_second": round(rate, 1),
                   "changelog_records_written": written, "changelog_records_left": left,
                   "changelog_bytes_left": size_on_disk, "recovery_seconds": round(recovery, 2)}
            console.print(row)
            rows.append(row)
    table = Table(title=f"restore against segment size: {events:,} events, {LEADS:,} leads, "
                        f"{PARTITIONS} partitions")
    for col in ("segment bytes", "worker events/s", "changelog records written",
                "left (a restore reads)", "per lead", "MB left", "recovery"):
        table.add_column(col)
    for r in rows:
        table.add_row(f"{r['segment_bytes']:,}", f"{r['events_per_second']:,.0f}",
                      f"{r['changelog_records_written']:,}", f"{r['changelog_records_left']:,}",
                      f"{r['changelog_records_left'] / LEADS:.2f}",
                      f"{r['changelog_bytes_left'] / 2**20:,.0f}",
                      f"{r['recovery_seconds']:.1f} s")
    console.print(table)
    (ROOT / "bench" / "changelog-segments.json").write_text(json.dumps(
        {"leads": LEADS, "events": events, "partitions": PARTITIONS,
         "cleaner_wait_seconds": CLEANER_WAIT_S, "runs": rows,
         "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
