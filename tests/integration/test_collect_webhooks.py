"""`POST /v1/webhooks/{name}` with the shipped HubSpot and Segment connectors, on a real
collector and broker, with payloads shaped as the vendors document them (HubSpot: "Webhooks
API" payloads and "Validating requests" v3; Segment: the Spec's track and identify calls as the
Webhooks destination sends them, signed X-Signature = hex HMAC-SHA1 of the body)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest

from streams.wire.avro import avro_codec
from tests.integration.collector_harness import CollectorProcess
from tests.integration.kafka_helpers import create_topics, read_to_end

PORT = 16471
PUBLIC = "https://collect.example.com"
HUBSPOT_SECRET = "hubspot-client-secret-" + uuid.uuid4().hex
SEGMENT_SECRET = "segment-shared-secret-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def collector(kafka_bootstrap, tmp_path_factory):
    topic = f"hooks-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, [topic], partitions=4)
    c = CollectorProcess(kafka_bootstrap, topic, PORT, tmp_path_factory.mktemp("hooks"),
                         LEADSTAGE_COLLECT_PUBLIC_URL=PUBLIC,
                         LEADSTAGE_HUBSPOT_CLIENT_SECRET=HUBSPOT_SECRET,
                         LEADSTAGE_SEGMENT_SHARED_SECRET=SEGMENT_SECRET)
    c.topic = topic  # type: ignore[attr-defined]
    c.start()
    yield c
    c.stop()


def topic_events(collector) -> list[dict]:
    """Everything on the topic now: a 202 means Kafka acknowledged, so it is all there."""
    records = read_to_end(collector.env["KAFKA_BOOTSTRAP_SERVERS"], collector.topic)
    return [avro_codec().decode(r.value)[1] for r in records]


def hubspot_signature(method: str, uri: str, body: bytes, timestamp: str) -> str:
    """HubSpot's v3 signature, as its documentation describes it."""
    message = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(HUBSPOT_SECRET.encode(), message,
                                     hashlib.sha256).digest()).decode()


def post_hubspot(collector, payload: list[dict], *, path: str = "/v1/webhooks/hubspot",
                 signed_uri: str | None = None, age_ms: int = 0, signature: str | None = None,
                 omit: str | None = None) -> tuple[int, dict]:
    body = json.dumps(payload).encode()
    timestamp = str(int(time.time() * 1000) - age_ms)
    headers = {"Content-Type": "application/json",
               "X-HubSpot-Request-Timestamp": timestamp,
               "X-HubSpot-Signature-Version": "v3",
               "X-HubSpot-Signature-v3": signature or hubspot_signature(
                   "POST", signed_uri or PUBLIC + path, body, timestamp)}
    if omit:
        del headers[omit]
    status, answer, _ = collector.request("POST", path, body, headers)
    return status, answer


def hubspot_events(now_ms: int, contact: int, deal: int) -> list[dict]:
    base = {"subscriptionId": 234567, "portalId": 12345678, "appId": 987654,
            "attemptNumber": 0, "occurredAt": now_ms - 60_000}
    return [
        {**base, "eventId": contact * 10 + 1, "subscriptionType": "contact.creation",
         "objectId": contact, "changeFlag": "CREATED", "changeSource": "CRM_UI",
         "sourceId": "userId:45678"},
        {**base, "eventId": contact * 10 + 2, "subscriptionType": "contact.propertyChange",
         "objectId": contact, "propertyName": "industry", "propertyValue": "software",
         "changeSource": "FORM"},
        {**base, "eventId": contact * 10 + 3, "subscriptionType": "contact.propertyChange",
         "objectId": contact, "propertyName": "firstname", "propertyValue": "Peter",
         "changeSource": "CRM_UI"},
        {**base, "eventId": contact * 10 + 4, "subscriptionType": "deal.propertyChange",
         "objectId": deal, "propertyName": "dealstage", "propertyValue": "closedwon",
         "changeSource": "CRM_UI"},
        {**base, "eventId": contact * 10 + 5, "subscriptionType": "deal.propertyChange",
         "objectId": deal + 1, "propertyName": "dealstage", "propertyValue": "closedlost",
         "changeSource": "CRM_UI"},
        {**base, "eventId": contact * 10 + 6, "subscriptionType": "object.creation",
         "objectTypeId": "0-1", "objectId": contact + 1, "changeFlag": "CREATED",
         "changeSource": "CRM_UI"},
    ]


def test_hubspot_signed_delivery_becomes_events_and_a_replay_counts_once(collector):
    now = int(time.time() * 1000)
    payload = hubspot_events(now, 7001, 9001)
    status, answer = post_hubspot(collector, payload)
    assert status == 202, answer
    assert answer == {"accepted": 5, "rejected": [], "ignored": 1}  # firstname is not read
    # HubSpot retries the same delivery (attemptNumber 1, new timestamp and signature)
    status, answer = post_hubspot(collector, [{**e, "attemptNumber": 1} for e in payload])
    assert status == 202 and answer["accepted"] == 5
    mine = [e for e in topic_events(collector) if e["event_id"].startswith("hubspot-7001")]
    assert len(mine) == 5, mine
    by_id = {e["event_id"]: e for e in mine}
    assert by_id["hubspot-70011"]["activity"] == "CONTACTED"
    assert by_id["hubspot-70011"]["lead_id"] == "hubspot-7001"
    assert by_id["hubspot-70011"]["source"] == "CRM"
    assert by_id["hubspot-70011"]["occurred_at"] == now - 60_000
    assert by_id["hubspot-70012"]["attributes"] == {"industry": "software"}
    assert by_id["hubspot-70014"]["activity"] == "DEAL_WON"
    assert by_id["hubspot-70014"]["lead_id"] == "hubspot-deal-9001"
    assert by_id["hubspot-70015"]["activity"] == "DEAL_LOST"
    assert by_id["hubspot-70016"]["lead_id"] == "hubspot-7002"


def test_hubspot_url_characters_are_decoded_as_hubspot_signs_them(collector):
    now = int(time.time() * 1000)
    path = "/v1/webhooks/hubspot?portal=12345678%3Aprod"
    status, answer = post_hubspot(collector, hubspot_events(now, 7101, 9101)[:1], path=path,
                                  signed_uri=PUBLIC + "/v1/webhooks/hubspot?portal=12345678:prod")
    assert status == 202, answer


@pytest.mark.parametrize("problem", ["wrong signature", "stale timestamp", "missing signature",
                                     "missing timestamp", "other secret", "other url"])
def test_hubspot_unverified_requests_are_401_and_produce_nothing(collector, problem):
    now = int(time.time() * 1000)
    contact = 7200 + ["wrong signature", "stale timestamp", "missing signature",
                      "missing timestamp", "other secret", "other url"].index(problem)
    payload = hubspot_events(now, contact, 9200)
    body = json.dumps(payload).encode()
    kwargs: dict = {}
    if problem == "wrong signature":
        kwargs["signature"] = base64.b64encode(b"x" * 32).decode()
    elif problem == "stale timestamp":
        kwargs["age_ms"] = 5 * 60_000 + 5_000
    elif problem == "missing signature":
        kwargs["omit"] = "X-HubSpot-Signature-v3"
    elif problem == "missing timestamp":
        kwargs["omit"] = "X-HubSpot-Request-Timestamp"
    elif problem == "other secret":
        ts = str(now)
        kwargs["signature"] = base64.b64encode(hmac.new(
            b"not-the-secret", b"POST" + (PUBLIC + "/v1/webhooks/hubspot").encode() + body
            + ts.encode(), hashlib.sha256).digest()).decode()
    elif problem == "other url":
        kwargs["signed_uri"] = "https://attacker.example.net/v1/webhooks/hubspot"
    status, answer = post_hubspot(collector, payload, **kwargs)
    assert status == 401, answer
    assert not [e for e in topic_events(collector)
                if e["event_id"].startswith(f"hubspot-{contact}")]


SEGMENT_TRACK = {
    "anonymousId": "23adfd82-aa0f-45a7-a756-24f2a7a4c895",
    "context": {"library": {"name": "analytics.js", "version": "2.11.1"},
                "page": {"path": "/pricing", "referrer": "", "search": "",
                         "title": "Pricing", "url": "https://www.example.com/pricing"},
                "userAgent": "Mozilla/5.0", "ip": "108.0.78.21"},
    "event": "Pricing Viewed",
    "integrations": {},
    "messageId": "ajs-f8ca1e4de5024d9430b3928bd8ac6b96",
    "properties": {"plan": "team"},
    "receivedAt": "2026-11-20T19:11:01.266Z",
    "sentAt": "2026-11-20T19:11:01.169Z",
    "timestamp": "2026-11-20T19:11:01.249Z",
    "type": "track",
    "userId": "AiUGstSDIg",
    "originalTimestamp": "2026-11-20T19:11:01.152Z",
}
SEGMENT_IDENTIFY = {
    "anonymousId": "507f191e810c19729de860ea",
    "channel": "browser",
    "context": {"ip": "8.8.8.8", "userAgent": "Mozilla/5.0"},
    "integrations": {"All": False, "Mixpanel": True, "Salesforce": True},
    "messageId": "022bb90c-bbac-11e4-8dfc-aa07a5b093db",
    "receivedAt": "2026-11-20T22:28:55.387Z",
    "sentAt": "2026-11-20T22:28:55.111Z",
    "timestamp": "2026-11-20T22:28:55.111Z",
    "traits": {"name": "Peter Gibbons", "email": "peter@example.com", "plan": "premium",
               "logins": 5, "company": {"name": "Initech", "industry": "software",
                                        "employee_count": 250}},
    "type": "identify",
    "userId": "97980cfea0067",
    "version": "1.1",
}


def post_segment(collector, call: dict, signature: str | None = None) -> tuple[int, dict]:
    body = json.dumps(call).encode()
    headers = {"Content-Type": "application/json"}
    if signature != "":
        headers["X-Signature"] = signature or hmac.new(SEGMENT_SECRET.encode(), body,
                                                       hashlib.sha1).hexdigest()
    status, answer, _ = collector.request("POST", "/v1/webhooks/segment", body, headers)
    return status, answer


def test_segment_track_and_identify_become_events(collector):
    assert post_segment(collector, SEGMENT_TRACK) == (202, {"accepted": 1, "rejected": [],
                                                            "ignored": 0})
    assert post_segment(collector, SEGMENT_IDENTIFY)[0] == 202
    # an event name the connector has no activity for is ignored, not dead-lettered
    status, answer = post_segment(collector, {**SEGMENT_TRACK, "event": "Course Clicked",
                                              "messageId": "ajs-other"})
    assert (status, answer["ignored"], answer["accepted"]) == (202, 1, 0)
    # a replayed call (same messageId) is one event
    assert post_segment(collector, SEGMENT_TRACK)[0] == 202
    events = {e["event_id"]: e for e in topic_events(collector)
              if e["event_id"].startswith("segment-")}
    track = events["segment-ajs-f8ca1e4de5024d9430b3928bd8ac6b96"]
    assert (track["activity"], track["lead_id"], track["source"]) == (
        "PRICING_VIEWED", "AiUGstSDIg", "WEB")
    identify = events["segment-022bb90c-bbac-11e4-8dfc-aa07a5b093db"]
    assert identify["attributes"] == {"industry": "software", "employees": "250"}
    assert "segment-ajs-other" not in events
    assert sum(1 for e in topic_events(collector)
               if e["event_id"] == "segment-ajs-f8ca1e4de5024d9430b3928bd8ac6b96") == 1


def test_segment_unverified_calls_are_401(collector):
    call = {**SEGMENT_TRACK, "messageId": "ajs-unverified"}
    assert post_segment(collector, call, signature="0" * 40)[0] == 401
    assert post_segment(collector, call, signature="")[0] == 401
    sha256 = hmac.new(SEGMENT_SECRET.encode(), json.dumps(call).encode(),
                      hashlib.sha256).hexdigest()
    assert post_segment(collector, call, signature=sha256)[0] == 401
    assert not [e for e in topic_events(collector) if e["event_id"] == "segment-ajs-unverified"]


def test_unknown_connector_is_404(collector):
    status, _, _ = collector.request("POST", "/v1/webhooks/salesforce", b"{}",
                                     {"Content-Type": "application/json"})
    assert status == 404
