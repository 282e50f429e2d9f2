"""`POST /v1/events` on a real collector and the real broker (DESIGN §9): who may send, what is
refused with which status, the limits, and that a 202 means the events are on the topic."""

from __future__ import annotations

import json
import socket
import time
import uuid

import pytest

from streams.wire.avro import avro_codec
from tests.integration.collector_harness import CollectorProcess
from tests.integration.kafka_helpers import create_topics, read_to_end

PORT = 16470
NOW = "2026-11-20T10:00:00+00:00"


def event(lead: str, activity: str = "PRICING_VIEWED", **extra: object) -> dict[str, object]:
    return {"event_id": str(uuid.uuid4()), "lead_id": lead, "occurred_at": NOW,
            "activity": activity, "source": "WEB", **extra}


@pytest.fixture(scope="module")
def collector(kafka_bootstrap, tmp_path_factory):
    topic = f"collect-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, [topic], partitions=4)
    folder = tmp_path_factory.mktemp("collect")
    c = CollectorProcess(kafka_bootstrap, topic, PORT, folder,
                         LEADSTAGE_COLLECT_MAX_IN_FLIGHT="1500",
                         LEADSTAGE_COLLECT_REQUEST_TIMEOUT_SECONDS="2",
                         LEADSTAGE_COLLECT_MAX_CONNECTIONS="16")
    c.topic = topic  # type: ignore[attr-defined]
    c.server_key = c.add_key("backend", "WEB", "server")  # type: ignore[attr-defined]
    c.crm_key = c.add_key("crm", "CRM", "server")  # type: ignore[attr-defined]
    c.browser_key = c.add_key("site", "WEB", "browser",  # type: ignore[attr-defined]
                              ["https://www.example.com"])
    c.start()
    yield c
    c.stop()


def test_accepted_events_are_on_the_topic_once_keyed_by_lead_and_retries_count_once(
        collector):
    bootstrap = collector.env["KAFKA_BOOTSTRAP_SERVERS"]
    before = len(read_to_end(bootstrap, collector.topic))
    batch = [event(f"L-{i}") for i in range(50)]
    status, body, _ = collector.post_events(collector.server_key, batch)
    assert status == 202, body
    assert body == {"accepted": 50, "rejected": []}
    # the same request again (a client that did not see the answer): nothing new on the topic
    status, body, _ = collector.post_events(collector.server_key, batch)
    assert status == 202 and body["accepted"] == 50
    records = read_to_end(bootstrap, collector.topic)  # a 202 means all of it is there
    assert len(records) == before + 50
    mine = {avro_codec().decode(r.value)[1]["event_id"]: r for r in records}
    for sent in batch:
        record = mine[sent["event_id"]]
        assert record.key == sent["lead_id"].encode()


def test_ndjson_and_a_single_object_are_accepted_and_bad_items_are_listed(collector):
    good = event("L-nd-1")
    lines = b"\n".join([json.dumps(good).encode(), b"{not json",
                        json.dumps(event("L-nd-2", amount=-5)).encode(),
                        json.dumps(event("someone@example.com")).encode()])
    status, body, _ = collector.post_events(collector.server_key, lines,
                                            "application/x-ndjson")
    assert status == 202, body
    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == [1, 2, 3]
    assert "invalid JSON" in body["rejected"][0]["reason"]
    assert "amount" in body["rejected"][1]["reason"]
    assert "e-mail" in body["rejected"][2]["reason"]
    status, body, _ = collector.post_events(collector.server_key, event("L-single"))
    assert (status, body["accepted"]) == (202, 1)


def test_nothing_valid_is_400_and_nothing_is_sent(collector):
    status, body, _ = collector.post_events(collector.server_key, [event("L-x", "NOT_AN_ACTIVITY")])
    assert status == 400 and body["accepted"] == 0
    assert "unknown activity" in body["rejected"][0]["reason"]
    for raw in (b"", b"[]", b"42", b'"text"', b"\xff\xfe"):
        status, body, _ = collector.post_events(collector.server_key, raw)
        assert status == 400, (raw, body)


def test_keys_missing_unknown_wrong_origin_wrong_source(collector):
    status, _, headers = collector.request("POST", "/v1/events", b"[]",
                                           {"Content-Type": "application/json"})
    assert status == 401 and headers.get("WWW-Authenticate") == "Bearer"
    status, body, _ = collector.post_events("lsk_" + "x" * 43, [event("L-k")])
    assert (status, body["error"]) == (401, "unknown key")
    # a browser key from another site, or with no Origin at all
    status, _, _ = collector.post_events(collector.browser_key, [event("L-k")],
                                         extra={"Origin": "https://evil.example.net"})
    assert status == 403
    status, _, _ = collector.post_events(collector.browser_key, [event("L-k")])
    assert status == 403
    status, _, headers = collector.post_events(collector.browser_key, [event("L-k")],
                                               extra={"Origin": "https://www.example.com"})
    assert status == 202
    assert headers["Access-Control-Allow-Origin"] == "https://www.example.com"
    # an item of another source than the key's refuses the whole request
    status, body, _ = collector.post_events(collector.crm_key, [
        {**event("L-s"), "source": "CRM"}, event("L-s")])
    assert status == 403 and "source" in body["error"]
    # a server key is not for pages, nor for URLs
    status, _, _ = collector.post_events(collector.server_key, [event("L-k")],
                                         extra={"Origin": "https://www.example.com"})
    assert status == 403
    status, _, _ = collector.request("POST", f"/v1/events?key={collector.server_key}",
                                     json.dumps([event("L-k")]).encode(),
                                     {"Content-Type": "application/json"})
    assert status == 401


def test_the_key_is_never_logged(collector):
    collector.post_events(collector.server_key, b"{broken")
    collector.post_events(collector.server_key + "x", [event("L-log")])
    log = collector.log_path.read_text()
    assert collector.server_key not in log
    assert collector.server_key[4:20] not in log


def test_cors_preflight_answers_only_known_origins(collector):
    status, _, headers = collector.request("OPTIONS", "/v1/events", None, {
        "Origin": "https://www.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "https://www.example.com"
    assert "Authorization" in headers["Access-Control-Allow-Headers"]
    status, _, headers = collector.request("OPTIONS", "/v1/events", None, {
        "Origin": "https://evil.example.net", "Access-Control-Request-Method": "POST"})
    assert status == 403 and "Access-Control-Allow-Origin" not in headers


def test_content_types_other_than_json_are_415(collector):
    for content_type in ("text/csv", "application/xml", "multipart/form-data"):
        status, _, _ = collector.post_events(collector.server_key, [event("L-ct")],
                                             content_type)
        assert status == 415, content_type


def test_body_over_1_mib_is_413_and_1001_items_400(collector):
    big = json.dumps([event("L-big", reason="x" * 1000)] * 2000).encode()
    assert len(big) > 2_000_000
    status, _, _ = collector.post_events(collector.server_key, big)
    assert status == 413
    status, body, _ = collector.post_events(collector.server_key,
                                            [event(f"L-{i}") for i in range(1001)])
    assert status == 400 and "1000" in body["error"]


def test_in_flight_budget_answers_429_with_retry_after(collector):
    # the budget is 1,500 events waiting for Kafka: 1,000 + 1,000 at once exceed it
    import concurrent.futures

    batches = [[event(f"L-b{j}-{i}") for i in range(1000)] for j in range(6)]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda b: collector.post_events(collector.server_key, b),
                                batches))
    statuses = sorted(r[0] for r in results)
    assert 429 in statuses and 202 in statuses, statuses
    assert all(r[2].get("Retry-After") == "1" for r in results if r[0] == 429)


def _slow_client(port: int, first: bytes, drip: bytes, pause_s: float, limit_s: float
                 ) -> tuple[float, bytes]:
    """Send `first`, then `drip` one byte every pause_s until the server closes; (seconds
    until it did, what it answered)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=limit_s) as conn:
        conn.sendall(first)
        answer = b""
        for byte in drip:
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                break
            conn.settimeout(pause_s)
            try:
                chunk = conn.recv(4096)
            except TimeoutError:
                chunk = None
            except OSError:
                break
            if chunk is not None:
                answer += chunk
                if not chunk or answer:
                    break
            if time.monotonic() - started > limit_s:
                break
        return time.monotonic() - started, answer


def test_a_slow_drip_client_is_cut_off_by_the_timeouts(collector):
    # headers one byte every half second: the connection closes after the 2 s request timeout
    took, answer = _slow_client(PORT, b"POST /v1/events HTTP/1.1\r\n",
                                b"Host: x\r\nContent-Type: application/json\r\n" * 10, 0.5, 20)
    assert took < 6, took
    assert answer in (b"",) or answer.startswith(b"HTTP/1.1 4"), answer
    # headers at once, then the body one byte every half second: 408 after 2 s
    body = json.dumps([event("L-slow")]).encode()
    head = (f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            f"{collector.server_key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    took, answer = _slow_client(PORT, head, body, 0.5, 20)
    assert took < 6, took
    assert answer.startswith(b"HTTP/1.1 408"), answer


def test_metrics_count_requests_and_events(collector):
    collector.post_events(collector.server_key, [event("L-m"), event("L-m", amount=-1)])
    status, text, _ = collector.request("GET", "/metrics")
    assert status == 200
    lines = text.splitlines()

    def value(prefix: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix))

    assert value('leadstage_collect_requests_total{route="/v1/events",status="202"}') >= 1
    assert value('leadstage_collect_events_total{outcome="accepted",route="/v1/events"}') >= 1
    assert value('leadstage_collect_events_total{outcome="rejected",route="/v1/events"}') >= 1
    assert value("leadstage_collect_kafka_seconds_count") >= 1


def _raw(data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", PORT), timeout=10) as conn:
        conn.sendall(data)
        return conn.recv(4096)


def test_long_urls_big_headers_and_too_many_connections_are_refused(collector):
    held = [socket.create_connection(("127.0.0.1", PORT), timeout=5) for _ in range(16)]
    try:
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", PORT), timeout=5)
        try:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
            answer = extra.recv(4096)
        except ConnectionResetError:
            answer = b""
        assert answer == b"", answer[:60]  # closed on arrival: 16 connections is the limit
        extra.close()
    finally:
        for conn in held:
            conn.close()
    time.sleep(0.3)
    long_url = _raw(b"POST /v1/events?" + b"x" * 10_000 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    assert long_url.split()[1] in (b"400", b"414"), long_url[:100]
    big_header = _raw(b"POST /v1/events HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "
                      + b"k" * 10_000 + b"\r\n\r\n")
    assert big_header.split()[1] in (b"400", b"431"), big_header[:100]
    status, _, headers = collector.request("GET", "/healthz")
    assert status == 200 and headers["Server"] == "leadstage"  # no Python/aiohttp versions


def test_keys_are_added_listed_and_revoked_without_a_restart(collector):
    import subprocess

    from tests.integration.collector_harness import LEADSTAGE

    env = collector.env
    added = subprocess.run([LEADSTAGE, "collect", "key", "add", "--id", "late", "--source",
                            "WEB", "--kind", "server"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip()
    assert secret.startswith("lsk_") and secret not in collector.keys_file.read_text()
    deadline = time.monotonic() + 5
    while collector.post_events(secret, [event("L-late")])[0] != 202:
        assert time.monotonic() < deadline, "the new key was not taken without a restart"
        time.sleep(0.3)
    listed = subprocess.run([LEADSTAGE, "collect", "key", "list"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert "late\tserver\tWEB" in listed.stdout and "lsk_" not in listed.stdout
    removed = subprocess.run([LEADSTAGE, "collect", "key", "remove", "--id", "late"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert removed.returncode == 0, removed.stderr
    deadline = time.monotonic() + 5
    while collector.post_events(secret, [event("L-late")])[0] != 401:
        assert time.monotonic() < deadline, "a revoked key still worked"
        time.sleep(0.3)
