"""A 202 means durable: with Kafka stopped mid-test the collector answers 503, and after Kafka
is back every event that got a 202 is on the topic exactly once (by event id). Bodies from
hypothesis and random bytes never make it answer 500."""

from __future__ import annotations

import json
import os
import time
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.wire.avro import avro_codec
from tests.integration.collector_harness import CollectorProcess
from tests.integration.kafka_helpers import create_topics, read_to_end

PORT = 16474
FUZZ_PORT = 16475


def batch(n: int) -> list[dict]:
    return [{"event_id": str(uuid.uuid4()), "lead_id": f"L-{uuid.uuid4().hex[:6]}",
             "occurred_at": "2026-11-20T10:00:00+00:00", "source": "WEB",
             "activity": "PAGE_VIEWED"} for _ in range(n)]


def test_kafka_stopped_mid_test_gives_503_and_every_202_is_on_the_topic_once(tmp_path,
                                                                            own_broker):
    from streams.tools import broker as local_broker

    address, cfg = own_broker(19492)
    collector = None
    try:
        create_topics(address, ["collect-down"], partitions=2)
        collector = CollectorProcess(address, "collect-down", PORT, tmp_path,
                                     LEADSTAGE_COLLECT_KAFKA_TIMEOUT_MS="3000")
        key = collector.add_key("backend", "WEB", "server")
        collector.start()
        acknowledged: list[str] = []
        statuses: list[int] = []

        def send(n: int = 20) -> int:
            events = batch(n)
            status, body, _ = collector.post_events(key, events)
            statuses.append(status)
            if status == 202:
                acknowledged.extend(e["event_id"] for e in events)
            else:
                assert status == 503, (status, body)
                assert "retry" in body["error"]
            return status

        for _ in range(10):
            assert send() == 202
        os.kill(int(cfg.pid_file.read_text()), 9)  # the broker dies
        down = [send() for _ in range(3)]
        assert down == [503, 503, 503], down
        status, health, _ = collector.request("GET", "/healthz")
        assert status == 503, health
        address, _ = local_broker.start(cfg, timeout_s=120)  # same data, same port
        deadline = time.monotonic() + 90
        while send() != 202 and time.monotonic() < deadline:
            time.sleep(1)
        for _ in range(5):
            assert send() == 202
        records = read_to_end(address, "collect-down")
        ids = [avro_codec().decode(r.value)[1]["event_id"] for r in records]
        missing = set(acknowledged) - set(ids)
        assert not missing, f"{len(missing)} events answered 202 are not on the topic"
        twice = {i for i in ids if ids.count(i) > 1}
        assert not twice, f"{len(twice)} events are on the topic more than once"
        assert statuses.count(503) >= 3
    finally:
        if collector is not None:
            collector.stop()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20)
_event_like = st.fixed_dictionaries(
    {"event_id": st.text(max_size=300), "lead_id": st.text(max_size=300)},
    optional={"occurred_at": st.one_of(st.text(), st.integers(), st.floats()),
              "activity": st.sampled_from(["PRICING_VIEWED", "DEAL_WON", "", "UNKNOWN"]),
              "amount": st.one_of(st.floats(), st.integers(), st.text()),
              "decision_by": st.one_of(st.text(), st.integers()),
              "attributes": st.dictionaries(st.text(), _json, max_size=3),
              "source": st.sampled_from(["WEB", "CRM", None, 3])})


def test_no_body_makes_the_collector_answer_500(kafka_bootstrap, tmp_path):
    create_topics(kafka_bootstrap, ["collect-fuzz"], partitions=2)
    collector = CollectorProcess(kafka_bootstrap, "collect-fuzz", FUZZ_PORT, tmp_path)
    key = collector.add_key("backend", "WEB", "server")
    collector.start()
    seen: set[int] = set()
    try:
        @settings(max_examples=100, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(body=st.one_of(st.builds(lambda: json.dumps(batch(3)).encode()),
                              st.binary(max_size=2000),
                              _json.map(lambda v: json.dumps(v).encode()),
                              st.lists(_event_like, max_size=20).map(
                                  lambda v: json.dumps(v).encode())),
               content_type=st.sampled_from(["application/json", "application/x-ndjson",
                                             "text/plain", "application/json; charset=latin1"]),
               path=st.sampled_from(["/v1/events", "/v1/webhooks/hubspot",
                                     "/v1/webhooks/segment", "/v1/webhooks/../x"]))
        def posting(body: bytes, content_type: str, path: str) -> None:
            status, answer, _ = collector.request("POST", path, body, {
                "Authorization": f"Bearer {key}", "Content-Type": content_type})
            seen.add(status)
            assert status < 500 or status == 503, (status, answer)

        posting()
    finally:
        collector.stop()
    assert "Traceback" not in collector.log_path.read_text()
    assert {202, 400} <= seen, seen
