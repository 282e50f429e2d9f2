"""Soak: the worker at 80% of its measured maximum for 10 minutes, latency per minute.

    make soak      # SOAK_RATE (default: 80% of bench/results.json's leadstage figure),
                   # SOAK_SECONDS (default 600), SOAK_WARMUP_SECONDS (default 60)

A steady stream where one event in five is a new lead's first contact (each makes a stage change,
whose latency from produce to the change record is measured) and the rest are page views,
pricing views and decision dates of leads seen in the last minutes. Reports p50/p99 per minute;
per minute too, the events the worker handled per second (its `leadstage_events_total`, read
every 10 s), how its event-loop thread spent the time (on a core, waiting for one, idle) and
the cores its other threads, the broker and this load generator took;
whether the last minute's p99 is within 20% of the first's (issue #18); and whether the worker
kept up (every minute's p99 within KEPT_UP_P99_MS). Before and after the run it times the
worker's pipeline in-process (`machine_speed`), and says whether this machine's speed changed
meanwhile. Writes bench/soak.json. Measures and reports; asserts nothing.

The measured minutes follow a warm-up at the same rate, reported on its own, and a pause until
the worker has handled every warm-up event: the broker is started for the run, and its JIT
compiles the paths of the produce and fetch requests in its first minute (the latency run of
bench/run.py leaves out its first seconds for the same reason). A broker in production has done
that long ago. The pause means no backlog built during the warm-up is carried into the first
measured minute, so the warm-up cannot make the verdict easier than the worker is steady.
"""

from __future__ import annotations

import gc
import json
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer as LibrdkafkaConsumer
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from local_kafka import bench_kafka, create_topics  # noqa: E402
from percentiles import percentile  # noqa: E402
from pipeline_loop import cpu_us_per_event  # noqa: E402
from run import (  # noqa: E402
    PARTITIONS,
    WORK,
    LeadstageWorker,
    fresh_work,
    load_producer,
    wait_for,
)

from streams.tools import broker  # noqa: E402
from streams.wire.avro import avro_codec  # noqa: E402

SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
WARMUP_SECONDS = int(os.environ.get("SOAK_WARMUP_SECONDS", "60"))
#: A minute whose p99 is above this had a queue of events waiting, not batches in flight: at 80%
#: of its maximum the worker's fetches hold a fraction of a second of events.
KEPT_UP_P99_MS = 1_000
#: (time.time(), events handled, then thread_times of the worker's event loop, then CPU
#: seconds of the whole worker process, of the broker's and of this load generator's)
Sample = tuple[float, float, float, float, float, float, float]


def default_rate() -> float:
    results = ROOT / "bench" / "results.json"
    if results.exists():
        return 0.8 * float(json.loads(results.read_text())["leadstage_events_per_second"])
    return 10_000.0


def main() -> int:
    # wide enough for the per-minute table when the output goes to a file
    console = Console(width=None if sys.stdout.isatty() else 160)
    rate = float(os.environ.get("SOAK_RATE") or default_rate())
    with console.status("this machine's speed, before"):
        before = machine_speed()
    fresh_work()
    with bench_kafka(console.print) as bootstrap:
        report = soak(console, bootstrap, rate)
    with console.status("this machine's speed, after"):
        after = machine_speed()
    change = after / before - 1
    console.print(f"this machine's speed: the worker's pipeline in-process took {before:.1f} µs "
                  f"of CPU per event before the run and {after:.1f} after ({change:+.0%}): "
                  + ("about the same before and after (it can still have moved between)"
                     if abs(change) <= MACHINE_DRIFT else
                     "[red]the machine's speed changed[/], so the minutes may differ for "
                     "that and not for the worker"))
    report["machine_pipeline_us_per_event"] = {"before": before, "after": after}
    (ROOT / "bench" / "soak.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


#: How far the machine's speed may move between before and after the run (machine_speed) for
#: the run to be read as on one machine: runs of the same code a few minutes apart differ by
#: up to about this much, while a slow spell took 40% more (bench/README.md, "Soak").
MACHINE_DRIFT = 0.10


def machine_speed() -> float:
    """CPU µs per event of the worker's pipeline in this process (bench/pipeline_loop.py, the
    `make bench` events, with the cycle collector off as in the soak's process): this machine's
    speed for the worker's work moves by up to half within the hour, so a soak is compared with
    the `make bench` it takes its rate from only when it ran at about the same speed throughout."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return cpu_us_per_event()
    finally:
        if enabled:
            gc.enable()


def soak(console: Console, bootstrap: str, rate: float) -> dict[str, Any]:
    """The run itself, its table and verdict printed; returns what bench/soak.json records."""
    # No cycle collection in this process: what it keeps (the latencies seen, the produce times
    # of new leads) is millions of small acyclic objects that every older pass walked again,
    # 1.4 s of CPU per 90 s of a run at 42,592 events/s, on the two cores the worker shares.
    gc.disable()
    name = f"soak-{random.randrange(10**6)}"
    topic = f"{name}-input"
    worker = None
    sent: dict[str, float] = {}
    seen: list[tuple[float, float]] = []  # (produced at, time.time(); latency ms)
    handled: list[Sample] = []
    stop = threading.Event()
    try:
        create_topics(bootstrap, [topic], PARTITIONS)
        worker = LeadstageWorker(bootstrap, topic, name)
        worker.start()
        wait_for(worker.ready, 120)
        # librdkafka, as the load producer (run.load_producer says why): it reads a fifth of
        # the events back, and kafka-python's per-record Python work took cores from the worker
        consumer = LibrdkafkaConsumer({"bootstrap.servers": bootstrap,
                                       "group.id": f"{name}-reader",
                                       "auto.offset.reset": "earliest",
                                       "enable.auto.commit": False})
        consumer.subscribe([f"{name}-changes"])
        assert worker.proc is not None
        pid = worker.proc.pid
        broker_pid = broker.running_pid(broker.BrokerConfig.from_env())

        def sample() -> Sample:
            mine = os.times()
            return (time.time(), worker.events_done(), *thread_times(pid), process_cpu_s(pid),
                    process_cpu_s(broker_pid) if broker_pid else 0.0, mine.user + mine.system)

        handled.append(sample())
        #: (time.time(), exit status) once the worker's process has ended: a dead worker's
        #: metrics read as zero, which are no figures for its minutes
        exited: list[tuple[float, int]] = []

        def alive() -> bool:
            assert worker is not None and worker.proc is not None
            status = worker.proc.poll()
            if status is not None and not exited:
                exited.append((time.time(), status))
            return status is None

        def read() -> None:
            while not stop.is_set():
                for r in consumer.consume(num_messages=5000, timeout=0.2):
                    key = r.key()
                    if r.error() is not None or key is None:
                        continue
                    at = sent.pop(key.decode(), None)
                    if at is not None:
                        seen.append((at / 1000, r.timestamp()[1] - at))

        def count() -> None:
            while not stop.wait(10) and alive():
                handled.append(sample())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        counter = threading.Thread(target=count, daemon=True)
        counter.start()
        # librdkafka's default linger, 5 ms (Kafka 4's Java producer has the same default):
        # what a web or CRM producer left at its defaults sends
        load = Load(load_producer(bootstrap, linger_ms=5), topic, sent)
        warmup: dict[str, Any] | None = None
        if WARMUP_SECONDS > 0:
            with console.status(f"warm-up: {rate:,.0f} events/s for {WARMUP_SECONDS} s"):
                warmup_start = time.time()
                load.run(rate, WARMUP_SECONDS)
                warmup_end = time.time()
                warmup_drained = time.perf_counter()
                drained_s = wait_for(lambda: worker.events_done() >= load.n or not alive(),
                                     300, 0.5) - warmup_drained
            warmup = {"events": load.n, "seconds": warmup_end - warmup_start,
                      "caught_up_after_s": drained_s,
                      **latencies([ms for at, ms in list(seen) if at < warmup_end]),
                      **{f"worker_{k}": v for k, v in worker_minute(
                          handled, warmup_start, warmup_end).items()}}
        start = time.time()
        counted_before = load.n
        with console.status(f"{rate:,.0f} events/s for {SECONDS} s"):
            produced_for = load.run(rate, SECONDS)
        load.close()
        produced_end = time.perf_counter()
        try:
            lag_s: float | None = wait_for(
                lambda: worker.events_done() >= load.n or not alive(), 300, 0.5) - produced_end
        except TimeoutError:
            lag_s = None
        if exited:
            lag_s = None
        time.sleep(2)
        stop.set()
        reader.join(timeout=10)
        counter.join(timeout=10)
        consumer.close()
    finally:
        if worker is not None:
            worker.stop()
    n = load.n - counted_before
    minutes: dict[int, list[float]] = {}
    # the changes of events produced within the run's whole minutes: the producer's last
    # fraction of a second is no minute to judge the last minute by
    whole_minutes_s = int(produced_for // 60) * 60
    for at, ms in seen:
        if 0 <= at - start < whole_minutes_s:
            minutes.setdefault(int((at - start) // 60), []).append(ms)
    table = Table(title=f"soak: {n:,} events at {rate:,.0f}/s for {produced_for:.0f} s")
    for col in ("minute", "changes", "p50 ms", "p99 ms",
                *(header for header, _ in WORKER_FIGURES.values())):
        table.add_column(col)
    rows: list[dict[str, Any]] = []
    if warmup is not None:
        table.add_row("warm-up", f"{warmup['changes']:,}", f"{warmup['p50_ms']:.0f}",
                      f"{warmup['p99_ms']:.0f}", *figures(warmup), end_section=True)
    for minute in sorted(minutes):
        worker_then = worker_minute(handled, start + minute * 60, start + minute * 60 + 60)
        row = {"minute": minute + 1, **latencies(minutes[minute]),
               **{f"worker_{k}": v for k, v in worker_then.items()}}
        rows.append(row)
        table.add_row(str(minute + 1), f"{row['changes']:,}", f"{row['p50_ms']:.0f}",
                      f"{row['p99_ms']:.0f}", *figures(row))
    console.print(table)
    if warmup is not None:
        console.print(f"warm-up: {warmup['events']:,} events in {warmup['seconds']:.0f} s, all "
                      f"handled {warmup['caught_up_after_s']:.1f} s after the last was "
                      "produced; the measured minutes began then")
    died = None
    if exited:
        at, status = exited[0]
        died = {"status": status, "after_measured_start_s": round(at - start, 1)}
        console.print(f"[red]the worker EXITED with status {status} "
                      f"{at - start:.0f} s into the measured minutes[/] (its log: "
                      f"{WORK / 'worker.log'}); the minutes after that have no worker figures")
    first, last = rows[0]["p99_ms"], rows[-1]["p99_ms"]
    flat, kept_up = verdict([row["p99_ms"] for row in rows])
    if died:  # the changes it made before it died say nothing about the rest of the run
        flat = kept_up = False
    slowest = max(row["p99_ms"] for row in rows)
    console.print(f"p99 first minute {first:.0f} ms, last minute {last:.0f} ms: "
                  f"{'flat (within 20% either way)' if flat else 'NOT flat'}; every minute's "
                  f"p99 at most {slowest:.0f} ms: "
                  f"{'kept up' if kept_up else 'did NOT keep up'} (the bound is "
                  f"{KEPT_UP_P99_MS:,} ms); " + (
                      f"the worker had every event {lag_s:.1f} s after the last was produced"
                      if lag_s is not None else "the worker did NOT catch up" + (
                          "" if died else " within 300 s")))
    return {"rate": rate, "seconds": SECONDS, "events": n, "warmup": warmup, "minutes": rows,
            "flat_within_20_percent": flat, "kept_up": kept_up, "caught_up_after_s": lag_s,
            "worker_exited": died}


def verdict(p99_ms: list[float]) -> tuple[bool, bool]:
    """(flat, kept up) for the measured minutes' p99s in order: flat is issue #18's rule, the
    last minute within 20% of the first either way (a first minute's backlog that drains is not
    flat either); kept up, every minute within KEPT_UP_P99_MS. A p99 of seconds that holds is a
    standing backlog, a worker at its limit: flat by the 20% rule, but not keeping up."""
    first, last = p99_ms[0], p99_ms[-1]
    return abs(last - first) <= 0.2 * first, max(p99_ms) <= KEPT_UP_P99_MS


class Load:
    """The soak's events, produced at a rate: one in five a new lead's first contact (its
    produce time kept in `sent`, by lead, for the change it makes), the rest page views,
    pricing views and decision dates of one of the last 50,000 new leads."""

    LATER = ("PAGE_VIEWED", "PAGE_VIEWED", "PRICING_VIEWED", "DECISION_TIMELINE_PROVIDED")

    def __init__(self, producer: Any, topic: str, sent: dict[str, float]) -> None:
        self.producer, self.topic, self.sent = producer, topic, sent
        self.codec = avro_codec()
        self.rng = random.Random(5)
        self.recent: list[str] = []
        #: events produced so far
        self.n = 0

    def run(self, rate: float, seconds: float) -> float:
        """Produce `rate` events a second for `seconds`; the seconds it took."""
        producer, topic, sent, codec, rng, recent = (
            self.producer, self.topic, self.sent, self.codec, self.rng, self.recent)
        later = self.LATER
        no_attributes: dict[str, str] = {}  # read by the encoder only
        start, first = time.time(), self.n
        n = first
        while (elapsed := time.time() - start) < seconds:
            due = first + int(elapsed * rate)
            now = int(time.time() * 1000)
            while n < due:
                if n % 5 == 0 or not recent:
                    lead, activity = f"S-{n}", "CONTACTED"
                    recent.append(lead)
                    if len(recent) > 50_000:
                        del recent[:10_000]
                    sent[lead] = time.time() * 1000
                else:
                    lead = rng.choice(recent)
                    activity = rng.choice(later)
                # one literal, not a copy of a template: this loop shares the machine's two
                # cores with the worker
                event: dict[str, Any] = {
                    "event_id": f"s-{n}", "lead_id": lead, "occurred_at": now,
                    "source": "WEB", "activity": activity, "decision_by": None,
                    "amount": None, "currency": None, "team": None, "assessed_stage": None,
                    "reason": None, "attributes": no_attributes}
                if activity == "DECISION_TIMELINE_PROVIDED":
                    event["decision_by"] = now // 86_400_000 + rng.choice([30, 400])
                producer.produce(topic, codec.encode("LeadActivity", event), lead.encode())
                n += 1
            self.n = n
            producer.poll(0)
            time.sleep(0.005)
        producer.flush(30)
        return time.time() - start

    def close(self) -> None:
        """Let the producer go (run flushed it): no reconnect messages once the broker stops."""
        self.producer = None


def latencies(values_ms: list[float]) -> dict[str, Any]:
    values = sorted(values_ms)
    return {"changes": len(values), "p50_ms": percentile(values, 0.5),
            "p99_ms": percentile(values, 0.99)}


def figures(row: dict[str, Any]) -> list[str]:
    """A row's worker figures, formatted for the table."""
    return ["" if row[f"worker_{k}"] is None else f"{row[f'worker_{k}']:{f}}"
            for k, (_, f) in WORKER_FIGURES.items()]


def thread_times(pid: int) -> tuple[float, float]:
    """(seconds on a core, seconds runnable but waiting for one) of a process's first thread:
    the worker's event loop, where all of its Python work runs (RocksDB's and aiokafka's
    threads are others). From the kernel's schedstat."""
    try:
        on_cpu, waiting, _ = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return 0.0, 0.0
    return int(on_cpu) / 1e9, int(waiting) / 1e9


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a whole process, all its threads."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: worker_minute's figures: their column headers and formats in the printed table
WORKER_FIGURES = {"events_per_second": ("worker events/s", ",.0f"),
                  "on_core": ("loop on a core", ".0%"),
                  "waiting_for_core": ("loop waiting for a core", ".0%"),
                  "cpu_us_per_event": ("loop CPU µs/event", ".1f"),
                  "other_threads_cores": ("worker's other threads, cores", ".2f"),
                  "broker_cores": ("broker, cores", ".2f"),
                  "load_generator_cores": ("load generator, cores", ".2f")}


def worker_minute(handled: list[Sample], begin: float, end: float) -> dict[str, float | None]:
    """Between two instants of the run, from the samples nearest them: events the worker handled
    per second; the shares of the time its event-loop thread was on a core and was ready but
    waiting for one (the rest it waited for Kafka or had nothing to do); that thread's CPU µs
    per event; and the cores taken meanwhile by the worker's other threads (RocksDB's, Faust's
    consumer), the broker and the load generator. While the worker is behind, the first is what
    it can do then, and the others say why; while it keeps up, the first is the offered rate."""
    inside = [h for h in handled if begin - 5 <= h[0] <= end + 5]
    if len(inside) < 2 or inside[-1][0] - inside[0][0] < 30:
        return dict.fromkeys(WORKER_FIGURES)
    (t0, n0, c0, w0, p0, b0, g0), (t1, n1, c1, w1, p1, b1, g1) = inside[0], inside[-1]
    events, span = n1 - n0, t1 - t0
    return {"events_per_second": events / span, "on_core": (c1 - c0) / span,
            "waiting_for_core": (w1 - w0) / span,
            "cpu_us_per_event": (c1 - c0) / events * 1e6 if events else None,
            "other_threads_cores": max(0.0, (p1 - p0) - (c1 - c0)) / span,
            "broker_cores": (b1 - b0) / span, "load_generator_cores": (g1 - g0) / span}


if __name__ == "__main__":
    sys.exit(main())
