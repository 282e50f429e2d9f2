"""Every input that once stopped or split a worker, sent to a real worker on the real broker,
each followed by good events on every partition that must still be applied.

The rows are those of the robustness issue: a decision date in year 10183, a 1 MB garbage
record, a lead state pushed past 1 MB, amounts no counter takes, records without a key, records
put on partitions by another client's default partitioner, and free-text opinions as labels."""

from __future__ import annotations

import time
import urllib.request

from confluent_kafka import Producer as LibrdkafkaProducer
from kafka import KafkaProducer

from streams.wire.gate import DLQ_RECORD_LIMIT
from tests.fakes import partition_of
from tests.integration.kafka_helpers import read_topic
from tests.integration.worker_harness import activity, by_lead, changes

PARTITIONS = 4
DAY = 86_400_000


def now_ms() -> int:
    return int(time.time() * 1000)


def encoded(event_id: str, lead_id: str, at: int, kind: str, **fields: object) -> bytes:
    return activity(event_id, lead_id, at, kind, **fields)


def test_no_input_stops_or_splits_the_worker(kafka_bootstrap, worker_factory):
    worker = worker_factory(16181).start()
    worker.wait_ready()
    name = worker_factory.name
    topic = f"{name}-activity"
    t = now_ms() - 3_600_000
    raw = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all",
                        max_request_size=2 * 1024 * 1024)

    def send(key: bytes | None, value: bytes) -> None:
        raw.send(topic, key=key, value=value)

    # 1. a decision date in year 10183 (once: the sweep crashed, then every restart)
    send(b"D", encoded("d1", "D", t, "CONTACTED"))
    send(b"D", encoded("d2", "D", t + 1, "DECISION_TIMELINE_PROVIDED", decision_by=3_000_000))
    # 2. a 1,048,400-byte garbage record (once: its DLQ copy was over the broker's limit)
    garbage = bytes(range(256)) * 4095 + bytes(80)
    assert len(garbage) == 1_048_400
    send(b"G", garbage)
    # 3. a state past 1 MB: a 600 KB currency, and 4,500 events with 256-character ids
    send(b"C", encoded("c1", "C", t, "BUDGET_CONFIRMED", amount=5.0, currency="E" * 600_000))
    send(b"FLOOD", encoded("f-contact", "FLOOD", t - 20 * DAY, "CONTACTED"))
    for i in range(4500):
        send(b"FLOOD", encoded(f"{i:0256d}", "FLOOD", t - 20 * DAY + i * 1000, "PAGE_VIEWED"))
    # 4. amounts no Prometheus counter takes (once: exit 70 inside the commit)
    for i, amount in enumerate([-1.0, float("-inf"), float("nan")]):
        send(b"M", encoded(f"m{i}", "M", t + i, "DEAL_WON", amount=amount, currency="EUR"))
    # 5. no key
    send(None, encoded("n1", "NK", t, "CONTACTED"))
    # 6. free text as a label (once: one series per distinct value)
    send(b"A", encoded("a0", "A", t, "CONTACTED"))
    for i in range(300):
        send(b"A", encoded(f"a{i + 1}", "A", t + i + 1, "STAGE_ASSESSED", team="SALES",
                           assessed_stage=f"very hot #{i}"))
    raw.flush()

    # 7. librdkafka's default partitioner (CRC32, not murmur2): most records land elsewhere
    librdkafka = LibrdkafkaProducer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
    ck_leads = [f"CK-{i}" for i in range(24)]
    for lead in ck_leads:
        librdkafka.produce(topic, key=lead.encode(), value=encoded(f"{lead}-1", lead, t,
                                                                    "CONTACTED"))
    assert librdkafka.flush(30) == 0

    # Then a good event on every partition, after all of the above.
    probes = {}
    for i in range(1000):
        lead = f"P-{i}"
        probes.setdefault(partition_of(lead.encode(), PARTITIONS), lead)
        if len(probes) == PARTITIONS:
            break
    for lead in probes.values():
        send(lead.encode(), encoded(f"{lead}-1", lead, t + 10_000, "CONTACTED"))
    raw.flush()
    raw.close()

    expected = {"D", "FLOOD", "A", *ck_leads, *probes.values()}
    got = by_lead(changes(kafka_bootstrap, f"{name}-changes", want=len(expected),
                          timeout_s=120))
    assert worker.proc is not None and worker.proc.poll() is None, worker.tail()
    assert set(got) == expected, worker.tail()
    for lead, lead_changes in got.items():  # one copy of each lead: no second "...:1"
        assert [c["sequence"] for c in lead_changes] == list(range(1, len(lead_changes) + 1))
        assert len({c["event_id"] for c in lead_changes}) == len(lead_changes), lead

    dead = read_topic(kafka_bootstrap, f"{name}-dlq", want=7, timeout_s=60)
    reasons = sorted(dict(r.headers)["leadstage.error.reason"].decode() for r in dead)
    assert reasons == sorted(["date_out_of_range", "oversized", "oversized", "invalid_amount",
                              "invalid_amount", "invalid_amount", "missing_key"])
    for r in dead:
        headers = dict(r.headers)
        assert len(r.value or b"") + len(r.key or b"") <= DLQ_RECORD_LIMIT
        assert int(headers["leadstage.original.offset"]) >= 0
        assert headers["leadstage.original.topic"] == topic.encode()
    cut = [dict(r.headers) for r in dead if r.key == b"G"]
    assert cut and cut[0]["leadstage.original.size"] == b"1048401"

    with urllib.request.urlopen(worker.url("/metrics"), timeout=10) as response:
        metrics = response.read().decode()
    assessed = {line.split('assessed_stage="')[1].split('"')[0] for line in metrics.splitlines()
                if line.startswith("leadstage_assessments_total{")}
    assert assessed == {"cold", "warm", "hot", "other"}
    rerouted = next(float(line.split()[-1]) for line in metrics.splitlines()
                    if line.startswith("leadstage_events_rerouted_total"))
    wrong = sum(partition_of(lead.encode(), PARTITIONS) != _crc32_partition(lead.encode())
                for lead in ck_leads)
    assert rerouted == wrong > 0
    assert len(metrics) < 200_000
    status, doc = worker.get("/leads/FLOOD")
    assert status == 200 and doc["stage"] == "cold"  # page views are not interest signals
    assert "problem" not in doc


def _crc32_partition(key: bytes) -> int:
    """librdkafka's consistent_random partitioner for a non-empty key: CRC32 modulo."""
    import zlib

    return zlib.crc32(key) % PARTITIONS


def test_records_are_not_half_applied_after_a_restart(kafka_bootstrap, worker_factory):
    """The crash loop: a worker restarted on the same input goes past the hostile records."""
    worker = worker_factory(16182).start()
    worker.wait_ready()
    name = worker_factory.name
    t = now_ms() - 3_600_000
    raw = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    raw.send(f"{name}-activity", key=b"X",
             value=encoded("x1", "X", t, "DECISION_TIMELINE_PROVIDED", decision_by=3_000_000))
    raw.send(f"{name}-activity", key=b"X", value=encoded("x2", "X", t + 1, "CONTACTED"))
    raw.flush()
    assert [c["stage"] for c in changes(kafka_bootstrap, f"{name}-changes", 1)] == ["cold"]
    worker.stop()
    again = worker_factory(16183).start()
    again.wait_ready()
    raw.send(f"{name}-activity", key=b"X", value=encoded("x3", "X", t + 2, "PRICING_VIEWED"))
    raw.flush()
    raw.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # re-emissions repeat an event_id: count each once
        seen = {c["event_id"]: c["stage"] for c in changes(kafka_bootstrap, f"{name}-changes",
                                                             want=99, timeout_s=3)}
        if len(seen) >= 2:
            break
    assert seen == {"X:1": "cold", "X:2": "warm"}
    assert again.proc is not None and again.proc.poll() is None
