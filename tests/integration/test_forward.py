"""`leadstage forward` and the reader against the real broker, with a real worker upstream."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from kafka import KafkaProducer

from streams.adapters.reader import CurrentStage, Gap, StageChange, StageChangeReader
from streams.adapters.settings import Settings
from streams.core.calendar import MS_PER_DAY
from streams.tools.processes import stop_process
from streams.wire.avro import avro_codec
from tests.integration.kafka_helpers import create_topics, read_topic
from tests.integration.webhook_receiver import Receiver
from tests.integration.worker_harness import activity, changes, produce_raw

LEADSTAGE = str(Path(sys.executable).parent / "leadstage")
SECRET = b"s3cret-for-tests"
LEADS = 40


def feed(bootstrap: str, name: str) -> int:
    """Every lead goes cold, warm, hot: three changes each. Returns how many changes."""
    t = int(time.time() * 1000) - 3_600_000
    records = []
    for i in range(LEADS):
        lead = f"F-{i}"
        records += [(lead.encode(), activity(f"{lead}-1", lead, t, "CONTACTED")),
                    (lead.encode(), activity(f"{lead}-2", lead, t + 1, "PRICING_VIEWED")),
                    (lead.encode(), activity(f"{lead}-3", lead, t + 2,
                                             "DECISION_TIMELINE_PROVIDED",
                                             decision_by=t // MS_PER_DAY + 30))]
    produce_raw(bootstrap, f"{name}-activity", records)
    return 3 * LEADS


def forwarder(bootstrap: str, name: str, url: str, port: int, log: Path,
              *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "LEADSTAGE_TOPIC_STAGE_CHANGES": f"{name}-changes", "LEADSTAGE_PARTITIONS": "4",
           "LEADSTAGE_FORWARD_SECRET": SECRET.decode(), "LEADSTAGE_FORWARD_PORT": str(port)}
    with open(log, "ab") as out:
        return subprocess.Popen([LEADSTAGE, "forward", "--url", url, "--group", f"{name}-fwd",
                                 "--dlq", f"{name}-fwd-dlq", *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait_until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_every_change_reaches_a_flaky_webhook_in_order(kafka_bootstrap, worker_factory,
                                                       tmp_path):
    worker = worker_factory(16381).start()
    worker.wait_ready()
    name = worker_factory.name
    total = feed(kafka_bootstrap, name)
    assert len(changes(kafka_bootstrap, f"{name}-changes", total)) == total
    rng = random.Random(7)
    # At most three failures per change: the backoff doubles per attempt (0.5 s, 1, 2, 4, ...),
    # and a change's longer streaks made this test take anywhere from about 30 s to 68 s; three
    # still retry through every status below and keep later changes of the lead behind it.
    failures: Counter[str] = Counter()

    def behaviour(change):
        if change["lead_id"] == "F-13":
            return 400, 0.0, {}
        if failures[change["event_id"]] >= 3:
            return 200, 0.0, {}
        roll = rng.random()
        if roll < 0.30:
            failed = 500, 0.0, {}
        elif roll < 0.35:
            failed = 429, 0.0, {"Retry-After": "1"}
        elif roll < 0.40:
            failed = 200, 1.5, {}  # past the forwarder's 1 s timeout: retried
        else:
            return 200, 0.0, {}
        failures[change["event_id"]] += 1
        return failed

    with Receiver(SECRET, behaviour) as receiver:
        proc = forwarder(kafka_bootstrap, name, receiver.url, 16391, tmp_path / "fwd.log",
                         "--timeout", "1")
        try:
            wanted = {f"F-{i}:{s}" for i in range(LEADS) if i != 13 for s in (1, 2, 3)}
            wait_until(lambda: wanted <= {r.event_id for r in receiver.accepted()}, 120,
                       "every change accepted")
            dead = read_topic(kafka_bootstrap, f"{name}-fwd-dlq", want=3, timeout_s=60)
        finally:
            assert stop_process(proc) == 0, (tmp_path / "fwd.log").read_text()
    assert all(r.signed for r in receiver.received)
    assert {r.status for r in receiver.received} >= {200, 400, 429, 500}
    by_lead: dict[str, list[int]] = {}
    for r in sorted(receiver.received, key=lambda r: r.at):  # in order of arrival
        if 200 <= r.status < 300:
            by_lead.setdefault(r.lead_id, []).append(r.sequence)
    for lead, sequences in by_lead.items():  # per-lead order (a repeat is allowed)
        assert sequences == sorted(sequences), (lead, sequences)
    assert len(dead) == 3  # F-13's three changes, each refused
    headers = [dict(d.headers) for d in dead]
    assert {h["leadstage.forward.status"] for h in headers} == {b"400"}
    assert {avro_codec().decode(d.value)[1]["lead_id"] for d in dead} == {"F-13"}
    assert all(h["leadstage.original.topic"] == f"{name}-changes".encode() for h in headers)


def test_a_killed_forwarder_loses_nothing(kafka_bootstrap, worker_factory, tmp_path):
    worker = worker_factory(16382).start()
    worker.wait_ready()
    name = worker_factory.name
    total = feed(kafka_bootstrap, name)
    assert len(changes(kafka_bootstrap, f"{name}-changes", total)) == total
    # 4 at a time, 0.1 s each: 120 changes take about 3 s, time enough to be killed midway
    with Receiver(SECRET, lambda change: (200, 0.1, {})) as receiver:
        first = forwarder(kafka_bootstrap, name, receiver.url, 16392, tmp_path / "fwd.log",
                          "--concurrency", "4")
        wait_until(lambda: len(receiver.accepted()) >= total // 3, 60, "a third delivered")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        delivered_before = {r.event_id for r in receiver.accepted()}
        assert len(delivered_before) < total  # killed mid-stream
        again = forwarder(kafka_bootstrap, name, receiver.url, 16392, tmp_path / "fwd.log")
        try:
            wait_until(lambda: len({r.event_id for r in receiver.accepted()}) == total, 120,
                       "every change delivered after the restart")
        finally:
            stop_process(again)


def test_the_reader_delivers_each_change_once_reports_gaps_and_commits_after_the_body(
        kafka_bootstrap, unique_name):
    changes_topic, stages_topic = unique_name("changes"), unique_name("stages")
    create_topics(kafka_bootstrap, [changes_topic, stages_topic], partitions=1)
    codec = avro_codec()

    def change(seq: int, stage: str) -> bytes:
        return codec.encode("LeadStageChanged", {
            "event_id": f"R:{seq}", "lead_id": "R", "sequence": seq, "previous_stage": None,
            "stage": stage, "changed_at": 1_795_000_000_000 + seq, "cause": "EVENT",
            "cause_event_id": None, "definitions_version": 1, "reason": "r", "facts": {}})

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    # 2 re-emitted (as after a worker's SIGKILL), 3 missing: a gap
    for seq, stage in [(1, "cold"), (2, "warm"), (2, "warm"), (4, "hot")]:
        producer.send(changes_topic, key=b"R", value=change(seq, stage))
    producer.send(stages_topic, key=b"R", value=None)  # erased
    producer.flush()
    settings = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                                  "LEADSTAGE_TOPIC_STAGE_CHANGES": changes_topic,
                                  "LEADSTAGE_TOPIC_STAGES": stages_topic})
    group = unique_name("reader")
    gaps: list[Gap] = []
    seen: list[StageChange | CurrentStage] = []
    with StageChangeReader(group, settings, on_gap=gaps.append) as reader:
        for item in reader:
            if isinstance(item, StageChange) and item.sequence == 4:
                break  # the body never returned for sequence 4: it is not committed
            seen.append(item)
    assert [s.sequence for s in seen if isinstance(s, StageChange)] == [1, 2]  # 2 once
    assert gaps == [Gap("R", 3, 4)]
    again: list[StageChange | CurrentStage] = []
    with StageChangeReader(group, settings) as reader:
        # sequence 4 is read again; the tombstone too unless the first reader got past it
        for item in reader:
            again.append(item)
            tombstone_seen = any(isinstance(s, CurrentStage) for s in seen + again)
            if tombstone_seen and any(isinstance(s, StageChange) for s in again):
                break
    assert [s.sequence for s in again if isinstance(s, StageChange)] == [4]  # read again
    tombstones = [s for s in seen + again if isinstance(s, CurrentStage)]
    assert len(tombstones) >= 1 and tombstones[0].stage is None and tombstones[0].record is None
