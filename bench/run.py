"""`make bench`: leadstage against the raw Kafka ceiling and the obvious Faust implementation.

All read the same pre-produced topic of generated events (Avro single-object encoded): the Quix
Streams and Kafka Streams peers and the leadstage worker in BENCH_ROUNDS rounds (2), each
system's best round compared (measure() says why). Writes bench/results.json, every round's
figures included, and prints a table with the targets. It measures and reports; it asserts
nothing.

    BENCH_LEADS=100000 BENCH_EVENTS=500000 BENCH_ROUNDS=2 .venv/bin/python bench/run.py
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError
from confluent_kafka import Consumer as LibrdkafkaConsumer
from confluent_kafka import Producer as LibrdkafkaProducer
from confluent_kafka import TopicPartition as LibrdkafkaPartition
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collect import measure as collector_measures  # noqa: E402
from forward import deliveries_per_second  # noqa: E402
from local_kafka import bench_kafka, create_topics  # noqa: E402
from peers.harness import PeerRun, run_kafka_streams, run_quix  # noqa: E402
from percentiles import percentile  # noqa: E402

from streams.adapters.settings import Settings  # noqa: E402
from streams.adapters.topics import changelog_topic  # noqa: E402
from streams.core.definitions.compiler import compile_definitions  # noqa: E402
from streams.core.definitions.loader import load_file  # noqa: E402
from streams.core.lead_state import LeadState  # noqa: E402
from streams.core.stage_machine import StageMachine  # noqa: E402
from streams.tools import broker  # noqa: E402
from streams.tools.generator import Generator, as_json  # noqa: E402
from streams.tools.processes import healthy, stop_process  # noqa: E402
from streams.wire.avro import avro_codec  # noqa: E402
from streams.wire.json_lines import parse_line  # noqa: E402

console = Console()
LEADS = int(os.environ.get("BENCH_LEADS", "100000"))
EVENTS = int(os.environ.get("BENCH_EVENTS", "500000"))
PARTITIONS = int(os.environ.get("BENCH_PARTITIONS", "8"))
BASELINE_EVENTS = int(os.environ.get("BENCH_BASELINE_EVENTS", "50000"))
#: rounds of the peers and leadstage (measure() says why more than one)
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
LATENCY_RATE, LATENCY_SECONDS = 5000, 20
#: seconds at LATENCY_RATE before the measured ones (see latency())
LATENCY_WARMUP_SECONDS = 10
WORK = ROOT / ".cache" / "bench"
#: the benchmark worker's LEADSTAGE_INSTANCE_ID (static membership, README "Restarts")
BENCH_INSTANCE_ID = "bench-worker"
#: Issue #18's targets (figures to report against, never asserted).
TARGETS = {"leadstage_events_per_second": 45000, "speedup_vs_faust": 5.0, "p99_latency_ms": 50,
           "peak_rss_mb": 350, "recovery_seconds": 10, "vs_quix": 1.5, "vs_kafka_streams": 0.5}


DEFAULT = ROOT / "definitions" / "lead-stages.yaml"
FIT = ROOT / "definitions" / "examples" / "fit-and-intent.yaml"


def evaluation_cost(path: Path, leads: int = 2000, rounds: int = 5) -> float:
    """µs to evaluate one lead (every fact, property and stage) under a definitions file,
    over generated histories folded by the worker's own stage machine."""
    compiled = compile_definitions(load_file(path))
    machine = StageMachine(compiled)
    states: dict[str, LeadState] = {}
    now = int(time.time() * 1000)
    for event in Generator(compiled, seed=7).history(leads, 120, now):
        record = parse_line(json.dumps(as_json(event)))
        state = states.setdefault(record["lead_id"], LeadState(record["lead_id"]))
        machine.fold(state, record, [])
    histories = [s.history for s in states.values()]
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for history in histories:
            compiled.evaluate(history, now)
        best = min(best, time.perf_counter() - started)
    return best / len(histories) * 1e6


def records(count: int, leads: int) -> list[tuple[bytes, bytes]]:
    """`count` events of exactly `leads` leads, in time order, so leads interleave as in a live
    stream (one lead's events back to back would flatter batching). When the leads' histories
    hold more events than `count`, a seeded sample of the events after each lead's first is
    dropped."""
    compiled = compile_definitions(load_file(ROOT / "definitions" / "lead-stages.yaml"))
    generator = Generator(compiled, seed=42)
    now = int(time.time() * 1000)
    firsts, rest = [], []
    seen: set[str] = set()
    for event in generator.history(leads, 120, now):
        if event["lead_id"] in seen:
            rest.append(event)
        else:
            seen.add(event["lead_id"])
            firsts.append(event)
    keep = max(0, count - len(firsts))
    if keep < len(rest):
        picked = sorted(random.Random(42).sample(range(len(rest)), keep))
        rest = [rest[i] for i in picked]  # keeps each lead's own order
    events = sorted(firsts + rest, key=lambda e: e["occurred_at"])[:count]
    codec = avro_codec()
    out: list[tuple[bytes, bytes]] = []
    for event in events:
        record = parse_line(json.dumps(as_json(event)))
        out.append((record["lead_id"].encode(), codec.encode("LeadActivity", record)))
    return out


def produce(bootstrap: str, topic: str, recs: list[tuple[bytes, bytes]]) -> float:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20,
                             batch_size=512 * 1024)
    start = time.perf_counter()
    for key, value in recs:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()
    return time.perf_counter() - start


def end_total(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        return sum(consumer.end_offsets(tps).values()) if tps else 0
    finally:
        consumer.close()


def records_on_disk(bootstrap: str, topic: str) -> int:
    """The records a reader of `topic` from its beginning gets, which is what a restore
    replays: fewer than the topic's offsets once the broker compacted some of it."""
    consumer = LibrdkafkaConsumer({"bootstrap.servers": bootstrap, "enable.auto.commit": False,
                                   "group.id": f"bench-count-{random.randrange(10**6)}",
                                   "enable.partition.eof": True})
    try:
        partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        consumer.assign([LibrdkafkaPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        count, at_end = 0, set[int | None]()
        while len(at_end) < len(partitions):
            for message in consumer.consume(10_000, timeout=1.0):
                error = message.error()
                if error is None:
                    count += 1
                elif error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                else:
                    raise RuntimeError(f"reading {topic}: {error}")
        return count
    finally:
        consumer.close()


def log_bytes(topic: str) -> int:
    """The record files of `topic`'s partitions in the local broker's folder. Not the index
    files: Kafka sizes an active segment's two indexes at 10 MB each, sparse, which counted
    160 MB on an 8-partition topic of any size."""
    return sum(f.stat().st_size for folder in broker.BrokerConfig().data_dir.glob(f"{topic}-*")
               for f in folder.glob("*.log"))


async def raw_consumer(bootstrap: str, topic: str, count: int) -> float:
    """aiokafka getmany + fastavro decoding, nothing else: the ceiling."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition as ATP

    codec = avro_codec()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        tps = [ATP(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen, start = 0, None
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10000)
            for batch in batches.values():
                if start is None:
                    start = time.perf_counter()
                for message in batch:
                    codec.decode(message.value)
                seen += len(batch)
        return count / (time.perf_counter() - (start or time.perf_counter()))
    finally:
        await consumer.stop()


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def wait_for(predicate: Callable[[], object], timeout_s: float, step: float = 0.25) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return time.perf_counter()
        time.sleep(step)
    raise TimeoutError("timed out")


def faust_baseline(bootstrap: str, topic: str, name: str) -> float:
    out = f"{name}-baseline-out"
    env = {**os.environ, "BENCH_APP_ID": f"{name}-baseline", "BENCH_BOOTSTRAP": bootstrap,
           "BENCH_TOPIC": topic, "BENCH_OUT": out, "BENCH_DATA_DIR": str(WORK / "baseline"),
           "BENCH_PARTITIONS": str(PARTITIONS)}
    create_topics(bootstrap, [out], PARTITIONS)
    with open(WORK / "baseline.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "faust", "-A", "bench.faust_baseline",
                                 "worker", "-l", "warn"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        first = wait_for(lambda: end_total(bootstrap, out) > 0, 120)
        first_count = end_total(bootstrap, out)
        done = wait_for(lambda: end_total(bootstrap, out) >= BASELINE_EVENTS, 900, 1.0)
        return (end_total(bootstrap, out) - first_count) / (done - first)
    finally:
        stop_process(proc, 60)


class LeadstageWorker:
    def __init__(self, bootstrap: str, topic: str, name: str, port: int = 16410,
                 **extra_env: str) -> None:
        self.env = {**os.environ, **extra_env, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                    "LEADSTAGE_APP_ID": f"{name}-leadstage", "LEADSTAGE_TOPIC_ACTIVITY": topic,
                    "LEADSTAGE_TOPIC_STAGE_CHANGES": f"{name}-changes",
                    "LEADSTAGE_TOPIC_STAGES": f"{name}-stages", "LEADSTAGE_TOPIC_DLQ":
                    f"{name}-dlq", "LEADSTAGE_PARTITIONS": str(PARTITIONS),
                    "LEADSTAGE_WEB_PORT": str(port),
                    "LEADSTAGE_DATA_DIR": str(WORK / "worker" / name)}
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        Path(self.env["LEADSTAGE_DATA_DIR"]).parent.mkdir(parents=True, exist_ok=True)
        with open(WORK / "worker.log", "ab") as log:
            self.proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "leadstage"), "worker",
                                          "-l", "warn"], cwd=ROOT, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT)

    def ready(self) -> bool:
        return healthy(self.url)

    def events_done(self) -> float:
        try:
            with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return 0.0
        total = sum(float(v) for v in re.findall(r"^leadstage_events_total\{.*\} (\S+)$",
                                                 text, re.M))
        return total + sum(float(v) for v in re.findall(
            r"^leadstage_dead_letters_total\{.*\} (\S+)$", text, re.M))

    def peak_rss_mb(self) -> float:
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024

    def throughput(self, events: int) -> float:
        """Start the worker on the pre-produced topic of `events` events; events/s from the end
        of its first batch to the last event (start-up and the first fetch left out)."""
        self.start()
        wait_for(self.ready, 120)
        first = wait_for(lambda: self.events_done() > 0, 120, 0.1)
        first_count = self.events_done()  # the first batch, already done
        done = wait_for(lambda: self.events_done() >= events, 1800, 0.5)
        return (events - first_count) / (done - first)

    def restart_empty(self, instance_id: str) -> float:
        """kill -9, lose the local state, start again with `instance_id` ("" for none):
        seconds until the worker is ready (its partitions recovered from the changelog)."""
        self.kill()
        shutil.rmtree(self.env["LEADSTAGE_DATA_DIR"], ignore_errors=True)
        self.env["LEADSTAGE_INSTANCE_ID"] = instance_id
        t0 = time.perf_counter()
        self.start()
        return wait_for(self.ready, 600, 0.2) - t0

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 60)


def load_producer(bootstrap: str, linger_ms: int) -> LibrdkafkaProducer:
    """The load generator of the latency run and the soak. librdkafka: it shares the machine's
    two cores with the worker and the broker, and kafka-python took about half a core at 5,000
    events/s, time the worker's latency then paid for. murmur2_random is the Java client's
    partitioner, which the worker expects of its producers."""
    return LibrdkafkaProducer({"bootstrap.servers": bootstrap, "acks": 1,
                               "linger.ms": linger_ms, "partitioner": "murmur2_random"})


@dataclass(frozen=True)
class Latency:
    """Produce time -> stage change record, ms: p50 and p99 of the measured window, and the
    p99 of the warm-up before it."""

    p50: float
    p99: float
    warmup_p99: float


def latency(bootstrap: str, topic: str, changes: str) -> Latency:
    """Steady LATENCY_RATE events/s of new leads; produce time -> stage change on the topic.

    The first LATENCY_WARMUP_SECONDS are reported on their own: the broker was started for the
    benchmark, and its JIT compiles the paths of small, frequent produce and fetch requests in
    the first seconds of this run (traced 2026-12-04: its C2 compiler threads took 35-58% of
    one of the two cores for about 6 s, and the worker's p99 in those seconds was 2-5 times
    the later one's), which a broker that has been running for a while has done long ago."""
    consumer = KafkaConsumer(changes, bootstrap_servers=bootstrap, auto_offset_reset="latest",
                             enable_auto_commit=False)
    consumer.poll(timeout_ms=1000)  # join, position at the end
    producer = load_producer(bootstrap, linger_ms=1)
    codec = avro_codec()
    sent: dict[str, float] = {}
    warmup: set[str] = set()
    start = time.perf_counter()
    n = 0
    while (elapsed := time.perf_counter() - start) < LATENCY_WARMUP_SECONDS + LATENCY_SECONDS:
        due = int(elapsed * LATENCY_RATE)
        while n < due:
            lead = f"LAT-{n}"
            value = codec.encode("LeadActivity", {
                "event_id": f"lat-{n}", "lead_id": lead, "occurred_at": int(time.time() * 1000),
                "source": "WEB", "activity": "CONTACTED", "decision_by": None, "amount": None,
                "currency": None, "team": None, "assessed_stage": None, "reason": None,
                "attributes": {}})
            sent[lead] = time.time() * 1000
            if elapsed < LATENCY_WARMUP_SECONDS:
                warmup.add(lead)
            producer.produce(topic, value, lead.encode())
            n += 1
        producer.poll(0)
        time.sleep(0.005)
    producer.flush(30)
    measured: list[float] = []
    warming: list[float] = []
    deadline = time.monotonic() + 60
    while len(measured) + len(warming) < len(sent) * 0.999 and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            for r in batch:
                lead = r.key.decode()
                if lead in sent:
                    (warming if lead in warmup else measured).append(r.timestamp - sent[lead])
    consumer.close()
    measured.sort()
    warming.sort()
    return Latency(percentile(measured, 0.5), percentile(measured, 0.99),
                   percentile(warming, 0.99))


def other_partitions(bootstrap: str) -> int:
    """Partitions of the topics on the broker before this run (Kafka's own not counted)."""
    with contextlib.closing(KafkaAdminClient(bootstrap_servers=bootstrap)) as admin:
        names = sorted(broker.user_topics(admin))
        return sum(len(t["partitions"]) for t in admin.describe_topics(names)) if names else 0


def fresh_work() -> None:
    """Start a run without the last one's worker data and logs: a worker's log is appended to
    by each of its restarts within a run, and grew by every run before."""
    WORK.mkdir(parents=True, exist_ok=True)
    for folder in ("worker", "baseline"):
        shutil.rmtree(WORK / folder, ignore_errors=True)
    for log in ("worker.log", "baseline.log", "forward.log"):
        (WORK / log).unlink(missing_ok=True)


def main() -> int:
    fresh_work()
    with bench_kafka(console.print) as bootstrap:
        return measure(bootstrap)


def measure(bootstrap: str) -> int:
    name = f"bench-{random.randrange(10**6)}"
    topic = f"{name}-input"
    results: dict[str, object] = {}
    worker = None
    try:
        others = other_partitions(bootstrap)
        if others > 100:
            console.print(f"[yellow]The broker already holds {others:,} partitions of other "
                          "topics: a broker with many slows every figure below (peers too), "
                          "so compare runs on brokers that hold about as much.[/]")
        create_topics(bootstrap, [topic], PARTITIONS)
        with console.status(f"generating and producing {EVENTS} events for {LEADS} leads"):
            recs = records(EVENTS, LEADS)
            produce(bootstrap, topic, recs)
        events = len(recs)
        console.print(f"{events} events on {topic} ({PARTITIONS} partitions)")

        with console.status("raw consumer (aiokafka getmany + fastavro)"):
            raw = asyncio.run(raw_consumer(bootstrap, topic, events))
        console.print(f"raw consumer: {raw:,.0f} events/s")

        with console.status(f"Faust baseline (first {BASELINE_EVENTS} events)"):
            baseline = faust_baseline(bootstrap, topic, name)
        console.print(f"Faust baseline: {baseline:,.0f} events/s")

        # The peers and leadstage, on the very same topic, one after the other (each alone on
        # the machine), in ROUNDS rounds; each system's best round is compared. This machine's
        # speed moves by a quarter or more within minutes (the same worker code ran the phase
        # at 45,907 and 35,730 events/s four minutes apart, 2026-12-06), so a single run each
        # compared whichever system a slow spell fell on. Every round's figure is in
        # results.json.
        create_topics(bootstrap, [f"{name}-{peer}-out" for peer in ("quix", "kstreams")],
                      PARTITIONS)
        quix_runs: list[PeerRun] = []
        kstreams_runs: list[PeerRun] = []
        leadstage_runs: list[float] = []
        rss = 0.0
        for round_ in range(1, ROUNDS + 1):
            with console.status(f"round {round_}: Quix Streams peer (building its virtualenv "
                                "the first time)"):
                quix_runs.append(run_quix(bootstrap, topic, f"{name}-quix-out", events))
            with console.status(f"round {round_}: Kafka Streams peer (building it with Maven "
                                "the first time)"):
                kstreams_runs.append(
                    run_kafka_streams(bootstrap, topic, f"{name}-kstreams-out", events))
            # The last round's worker stays for what follows. Static membership (README
            # "Restarts"), so that the recovery below measures the restart itself; the same
            # restart without it is measured after.
            last = round_ == ROUNDS
            worker = LeadstageWorker(bootstrap, topic, name if last else f"{name}-r{round_}",
                                     LEADSTAGE_INSTANCE_ID=BENCH_INSTANCE_ID)
            with console.status(f"round {round_}: leadstage worker"):
                leadstage_runs.append(worker.throughput(events))
                round_rss = worker.peak_rss_mb()
                rss = max(rss, round_rss)
            if not last:
                worker.stop()
                shutil.rmtree(worker.env["LEADSTAGE_DATA_DIR"], ignore_errors=True)
                worker = None
            console.print(f"round {round_}: Quix Streams peer "
                          f"{quix_runs[-1].events_per_second:,.0f} events/s (peak RSS "
                          f"{quix_runs[-1].peak_rss_mb:.0f} MB), Kafka Streams peer "
                          f"{kstreams_runs[-1].events_per_second:,.0f} (peak RSS "
                          f"{kstreams_runs[-1].peak_rss_mb:.0f} MB), leadstage "
                          f"{leadstage_runs[-1]:,.0f} (peak RSS {round_rss:.0f} MB)")
        assert worker is not None
        quix = max(quix_runs, key=lambda run: run.events_per_second)
        kstreams = max(kstreams_runs, key=lambda run: run.events_per_second)
        leadstage = max(leadstage_runs)
        # For README "Sizing": what one lead costs on disk, and what the changelog holds and
        # was written, read from the worker's and the local broker's folders. The broker
        # compacts the changelog's segments as they roll (LEADSTAGE_CHANGELOG_SEGMENT_BYTES),
        # so what one event wrote is estimated from the records left and their size.
        time.sleep(2)
        rocksdb_bytes = folder_bytes(WORK / "worker" / name)
        changelog_name = changelog_topic(Settings.from_env(worker.env))
        changelog_written = end_total(bootstrap, changelog_name)
        changelog = records_on_disk(bootstrap, changelog_name)
        changelog_bytes = 0 if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") else log_bytes(
            changelog_name)
        written_per_event = changelog_bytes / max(changelog, 1) * changelog_written / events
        console.print(f"disk: {rocksdb_bytes / LEADS:,.0f} bytes of worker data per lead; "
                      f"changelog: {changelog_written:,} records written, {changelog:,} left "
                      f"after compaction ({changelog_bytes / LEADS:,.0f} bytes per lead), "
                      f"about {written_per_event:,.0f} bytes written per event")

        # Recovery first, while the worker holds exactly the benchmark's leads; the latency
        # run then uses the recovered worker.

        with console.status("recovery after kill -9 and losing the local state"):
            recovery = worker.restart_empty(BENCH_INSTANCE_ID)
            # Without an id the new process is a new member: Kafka waits for the dead one's
            # session to expire before it assigns anything.
            recovery_dynamic = worker.restart_empty("")
        console.print(f"recovery: {recovery:.1f} s ({changelog:,} changelog records); "
                      f"{recovery_dynamic:.1f} s without static membership")

        with console.status("latency at a steady 5,000 events/s"):
            lat = latency(bootstrap, topic, f"{name}-changes")
        console.print(f"latency p50 {lat.p50:.0f} ms, p99 {lat.p99:.0f} ms (the first "
                      f"{LATENCY_WARMUP_SECONDS} s, not counted: p99 {lat.warmup_p99:.0f} ms)")
        rss = max(rss, worker.peak_rss_mb())  # the recovered worker's peak counts too
        worker.stop()

        # The fit-and-intent example (properties, sets, arithmetic, a windowed maximum) on the
        # same input: what a company's richer agreement costs.
        worker = LeadstageWorker(bootstrap, topic, f"{name}-fit", 16411,
                                 LEADSTAGE_DEFINITIONS=str(FIT))
        with console.status("leadstage worker with definitions/examples/fit-and-intent.yaml"):
            fit_rate = worker.throughput(events)
        console.print(f"leadstage with fit-and-intent: {fit_rate:,.0f} events/s")
        default_us, fit_us = evaluation_cost(DEFAULT), evaluation_cost(FIT)
        console.print(f"evaluation per lead: default {default_us:.1f} µs, "
                      f"fit-and-intent {fit_us:.1f} µs")
        worker.stop()
        with console.status("forwarder to a local webhook receiver"):
            forward_now = deliveries_per_second(bootstrap, 0.0)
            forward_20ms = deliveries_per_second(bootstrap, 20.0)
        console.print(f"forwarder: {forward_now:,.0f} deliveries/s (receiver answers at once), "
                      f"{forward_20ms:,.0f} (20 ms per request)")
        with console.status("collector: batches of 100 over keep-alive connections"):
            collected = collector_measures(bootstrap)
        console.print(f"collector: {collected['collect_events_per_second']:,.0f} events/s "
                      f"accepted; p99 {collected['collect_p99_ms_at_5k']:.0f} ms at 5,000/s")

        import aiokafka
        import faust

        results = {
            "broker_partitions_before": others,
            "leadstage_events_per_second": round(leadstage, 1),
            "faust_baseline_events_per_second": round(baseline, 1),
            "raw_consumer_events_per_second": round(raw, 1),
            "quix_events_per_second": round(quix.events_per_second, 1),
            "kafka_streams_events_per_second": round(kstreams.events_per_second, 1),
            "leadstage_vs_quix": round(leadstage / quix.events_per_second, 2),
            "leadstage_vs_kafka_streams": round(leadstage / kstreams.events_per_second, 2),
            "rounds": {
                "leadstage_events_per_second": [round(r, 1) for r in leadstage_runs],
                "quix_events_per_second": [round(r.events_per_second, 1) for r in quix_runs],
                "kafka_streams_events_per_second": [round(r.events_per_second, 1)
                                                    for r in kstreams_runs],
            },
            "quix_peak_rss_mb": round(quix.peak_rss_mb, 1),
            "kafka_streams_peak_rss_mb": round(kstreams.peak_rss_mb, 1),
            "p50_latency_ms": round(lat.p50, 1), "p99_latency_ms": round(lat.p99, 1),
            "p99_latency_warmup_ms": round(lat.warmup_p99, 1),
            "peak_rss_mb": round(rss, 1), "recovery_seconds": round(recovery, 2),
            "recovery_seconds_dynamic_membership": round(recovery_dynamic, 2),
            "worker_data_bytes_per_lead": round(rocksdb_bytes / LEADS, 1),
            "changelog_bytes_per_event": round(written_per_event, 1),
            "changelog_bytes_per_lead": round(changelog_bytes / LEADS, 1),
            "changelog_records_written": changelog_written,
            "recovery_changelog_records": changelog,
            "fit_and_intent_events_per_second": round(fit_rate, 1),
            "forward_deliveries_per_second": round(forward_now, 1),
            "forward_deliveries_per_second_20ms_receiver": round(forward_20ms, 1),
            **collected,
            "evaluation_us_per_lead": {"default": round(default_us, 2),
                                       "fit_and_intent": round(fit_us, 2)},
            "leads": LEADS, "events": events, "partitions": PARTITIONS,
            "baseline_measured_over_events": BASELINE_EVENTS,
            "versions": {"python": platform.python_version(), "faust": faust.__version__,
                         "aiokafka": aiokafka.__version__,
                         "kafka": broker.kafka_version()},
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") *
                                           os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        out = "results.json" if LEADS == 100_000 else f"results-{LEADS}.json"
        (ROOT / "bench" / out).write_text(json.dumps(results, indent=2) + "\n")
        report(results)
        return 0
    finally:
        if worker is not None:
            worker.stop()


def report(r: dict[str, Any]) -> None:
    speedup = r["leadstage_events_per_second"] / max(r["faust_baseline_events_per_second"], 1)
    table = Table(title="leadstage benchmark")
    for col in ("measure", "value", "target", "met"):
        table.add_column(col)
    rows = [
        ("raw consumer events/s (ceiling)", f"{r['raw_consumer_events_per_second']:,.0f}", "", ""),
        ("Faust baseline events/s", f"{r['faust_baseline_events_per_second']:,.0f}", "", ""),
        ("Kafka Streams peer events/s (Java, 1 thread)",
         f"{r['kafka_streams_events_per_second']:,.0f}", "", ""),
        ("Quix Streams peer events/s", f"{r['quix_events_per_second']:,.0f}", "", ""),
        ("leadstage events/s", f"{r['leadstage_events_per_second']:,.0f}", "≥ 45,000",
         r["leadstage_events_per_second"] >= TARGETS["leadstage_events_per_second"]),
        *([("every round's events/s: leadstage; Quix Streams; Kafka Streams (the best of "
            "each above)", "; ".join(", ".join(f"{v:,.0f}" for v in r["rounds"][k]) for k in (
                "leadstage_events_per_second", "quix_events_per_second",
                "kafka_streams_events_per_second")), "", "")] if "rounds" in r else []),
        ("leadstage / Quix Streams peer", f"{r['leadstage_vs_quix']:.2f}x", "≥ 1.5x",
         r["leadstage_vs_quix"] >= TARGETS["vs_quix"]),
        ("leadstage / Kafka Streams peer", f"{r['leadstage_vs_kafka_streams']:.2f}x", "≥ 0.5x",
         r["leadstage_vs_kafka_streams"] >= TARGETS["vs_kafka_streams"]),
        ("peak RSS: Quix Streams / Kafka Streams peers",
         f"{r['quix_peak_rss_mb']:.0f} / {r['kafka_streams_peak_rss_mb']:.0f} MB", "", ""),
        ("leadstage / Faust baseline", f"{speedup:.1f}x", "≥ 5x",
         speedup >= TARGETS["speedup_vs_faust"]),
        ("p50 latency at 5,000/s", f"{r['p50_latency_ms']:.0f} ms", "", ""),
        ("p99 latency at 5,000/s", f"{r['p99_latency_ms']:.0f} ms", "≤ 50 ms",
         r["p99_latency_ms"] <= TARGETS["p99_latency_ms"]),
        (f"p99 latency, the first {LATENCY_WARMUP_SECONDS} s (broker warming up)",
         f"{r['p99_latency_warmup_ms']:.0f} ms", "", ""),
        ("peak RSS", f"{r['peak_rss_mb']:.0f} MB", "≤ 350 MB",
         r["peak_rss_mb"] <= TARGETS["peak_rss_mb"]),
        ("recovery (kill -9, state lost; static membership)", f"{r['recovery_seconds']:.1f} s",
         "≤ 10 s", r["recovery_seconds"] <= TARGETS["recovery_seconds"]),
        ("recovery without static membership",
         f"{r['recovery_seconds_dynamic_membership']:.1f} s", "", ""),
        *([("changelog: records replayed in recovery / written",
            f"{r['recovery_changelog_records']:,} / {r['changelog_records_written']:,}", "",
            "")] if "changelog_records_written" in r else []),
        ("worker data on disk per lead; changelog bytes written per event",
         f"{r['worker_data_bytes_per_lead']:,.0f} B; {r['changelog_bytes_per_event']:,.0f} B",
         "", ""),
        ("events/s with fit-and-intent.yaml", f"{r['fit_and_intent_events_per_second']:,.0f}",
         "", ""),
        ("forwarder deliveries/s, receiver at once",
         f"{r['forward_deliveries_per_second']:,.0f}", "", ""),
        ("forwarder deliveries/s, receiver 20 ms",
         f"{r['forward_deliveries_per_second_20ms_receiver']:,.0f}", "≥ 2,000",
         r["forward_deliveries_per_second_20ms_receiver"] >= 2000),
        ("collector events/s accepted, batches of 100",
         f"{r['collect_events_per_second']:,.0f}", "≥ 20,000",
         r["collect_events_per_second"] >= 20000),
        ("collector p99 request latency at 5,000 events/s",
         f"{r['collect_p99_ms_at_5k']:.0f} ms", "≤ 50 ms", r["collect_p99_ms_at_5k"] <= 50),
        ("evaluation per lead: default / fit-and-intent",
         f"{r['evaluation_us_per_lead']['default']:.1f} / "
         f"{r['evaluation_us_per_lead']['fit_and_intent']:.1f} µs", "", ""),
    ]
    for measure, value, target, met in rows:
        table.add_row(measure, value, target, "" if met == "" else ("yes" if met else "NO"))
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
