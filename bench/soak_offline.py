"""The soak's events without the soak: what a live stream adds to the worker's cost per event.

    .venv/bin/python bench/soak_offline.py      # BENCH_EVENTS (default 500,000), ROUNDS (3)

`make soak` costs the worker more event-loop CPU per event than `make bench`'s throughput phase
does. Three explanations differ in what they ask of the worker: the soak's events (a new lead in
every fifth, the rest for recent leads), the machine's cores shared with a live load generator
and the broker taking its requests, or the live stream itself (fetches at the head of the log,
read seconds after the events were written). This script takes the first two apart from the
third. On pre-produced topics, a fresh worker alone handles, in alternating rounds:

- `bench`: the `make bench` workload, BENCH_EVENTS events of a fifth as many leads;
- `soak`: BENCH_EVENTS of the soak's own events (bench/soak.py's `Load`, the same seed);
- `soak + load`: the same topic, while the soak's load generator produces at the soak's default
  rate (80% of the last `make bench` figure) to another topic that nobody reads (its produce
  requests, its librdkafka threads and the broker's appends take the cores as in the soak).

For each: events/s from the end of the worker's first batch to its last event, and CPU µs per
event of the event-loop thread and of the whole worker process. First, without Kafka, it counts
for both workloads the leads touched per event when each partition's records are handled in
runs of a given length, as the worker folds a lead's events in a fetch with one state read,
encode and write: a pre-produced topic is fetched 20,000 records of one partition at a time, a
live stream that is kept up with in runs of a few hundred. Writes bench/soak-offline.json.
Measures and reports; asserts nothing.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from local_kafka import bench_kafka, create_topics  # noqa: E402
from run import (  # noqa: E402
    EVENTS,
    PARTITIONS,
    LeadstageWorker,
    fresh_work,
    load_producer,
    produce,
    records,
    wait_for,
)
from soak import Load, default_rate, process_cpu_s, thread_times  # noqa: E402

from tests.fakes import partition_of  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "3"))
#: run lengths (records of one partition handled together) for leads_touched_per_event
RUNS = (500, 2_000, 5_000, 10_000, 20_000)


class Collected:
    """A stand-in for the load producer that keeps what Load produces, for a pre-produced
    topic."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes]] = []

    def produce(self, topic: str, value: bytes, key: bytes) -> None:
        self.records.append((key, value))

    def poll(self, timeout: float) -> None:
        pass

    def flush(self, timeout: float) -> None:
        pass


def soak_records(count: int) -> list[tuple[bytes, bytes]]:
    """The first `count` events `make soak` produces (keys and values)."""
    collected = Collected()
    load = Load(collected, "", {})
    while len(collected.records) < count:
        load.run(10_000_000, 0.01)  # as fast as it goes, in steps
    return collected.records[:count]


def leads_touched_per_event(keys: list[bytes], partitions: int, run: int) -> float:
    """Leads touched per event when each partition's records (the Java client's partitioner)
    are handled `run` at a time: each run touches each of its leads once."""
    by_partition: dict[int, list[bytes]] = {}
    for key in keys:
        by_partition.setdefault(partition_of(key, partitions), []).append(key)
    touched = 0
    for partition_keys in by_partition.values():
        for start in range(0, len(partition_keys), run):
            touched += len(set(partition_keys[start:start + run]))
    return touched / len(keys)


def alone(bootstrap: str, topic: str, name: str, events: int) -> dict[str, float]:
    """A fresh worker on the pre-produced topic: events/s and CPU µs per event, from the end of
    its first batch to its last event."""
    worker = LeadstageWorker(bootstrap, topic, name)
    worker.start()
    try:
        wait_for(worker.ready, 120)
        assert worker.proc is not None
        pid = worker.proc.pid
        first = wait_for(lambda: worker.events_done() > 0, 120, 0.1)
        done_before = worker.events_done()
        loop_before, process_before = thread_times(pid)[0], process_cpu_s(pid)
        last = wait_for(lambda: worker.events_done() >= events, 1800, 0.5)
        loop_after, process_after = thread_times(pid)[0], process_cpu_s(pid)
    finally:
        worker.stop()
        shutil.rmtree(worker.env["LEADSTAGE_DATA_DIR"], ignore_errors=True)
    handled = events - done_before
    return {"events_per_second": handled / (last - first),
            "loop_cpu_us_per_event": (loop_after - loop_before) / handled * 1e6,
            "process_cpu_us_per_event": (process_after - process_before) / handled * 1e6}


def main() -> int:
    console = Console(width=None if sys.stdout.isatty() else 120)
    fresh_work()
    rate = default_rate()
    runs: list[dict[str, Any]] = []
    bench_records, soak_events = records(EVENTS, EVENTS // 5), soak_records(EVENTS)
    touches = {label: {run: leads_touched_per_event([k for k, _ in recs], PARTITIONS, run)
                       for run in RUNS}
               for label, recs in (("bench", bench_records), ("soak", soak_events))}
    table = Table(title=f"leads touched per event, {EVENTS:,} events, {PARTITIONS} partitions, "
                        "by the records of one partition handled together")
    table.add_column("workload")
    for run in RUNS:
        table.add_column(f"{run:,}")
    for label, by_run in touches.items():
        table.add_row(label, *(f"{by_run[run]:.2f}" for run in RUNS))
    console.print(table)
    with bench_kafka(console.print) as bootstrap:
        name = f"offline-{random.randrange(10**6)}"
        bench_topic, soak_topic, load_topic = (f"{name}-bench", f"{name}-soak", f"{name}-load")
        create_topics(bootstrap, [bench_topic, soak_topic, load_topic], PARTITIONS)
        with console.status(f"producing {EVENTS:,} events of each workload"):
            produce(bootstrap, bench_topic, bench_records)
            produce(bootstrap, soak_topic, soak_events)
        for round_ in range(1, ROUNDS + 1):
            for label, topic in (("bench", bench_topic), ("soak", soak_topic),
                                 ("soak + load", soak_topic)):
                stop = threading.Event()
                generator = None
                if label == "soak + load":
                    load = Load(load_producer(bootstrap, linger_ms=5), load_topic, {})

                    def generate(load: Load = load, stop: threading.Event = stop) -> None:
                        while not stop.is_set():
                            load.run(rate, 1.0)

                    generator = threading.Thread(target=generate, daemon=True)
                    generator.start()
                with console.status(f"round {round_}: {label}"):
                    try:
                        group = f"{name}-{round_}-{label.replace(' + ', '-')}"
                        measured = alone(bootstrap, topic, group, EVENTS)
                    finally:
                        stop.set()
                        if generator is not None:
                            generator.join()
                runs.append({"round": round_, "workload": label, **measured})
                console.print(f"round {round_}, {label}: {measured['events_per_second']:,.0f} "
                              f"events/s, loop {measured['loop_cpu_us_per_event']:.1f} µs/event")
    table = Table(title=f"{EVENTS:,} events, the worker alone on a pre-produced topic "
                        f"(the load: {rate:,.0f} events/s to another topic)")
    for col in ("workload", "events/s", "loop CPU µs/event", "process CPU µs/event"):
        table.add_column(col)
    for label in ("bench", "soak", "soak + load"):
        mine = [r for r in runs if r["workload"] == label]
        table.add_row(label, ", ".join(f"{r['events_per_second']:,.0f}" for r in mine),
                      ", ".join(f"{r['loop_cpu_us_per_event']:.1f}" for r in mine),
                      ", ".join(f"{r['process_cpu_us_per_event']:.1f}" for r in mine))
    console.print(table)
    (ROOT / "bench" / "soak-offline.json").write_text(
        json.dumps({"events": EVENTS, "load_rate": rate, "leads_touched_per_event": touches,
                    "runs": runs}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
