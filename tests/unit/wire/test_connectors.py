"""Webhook connectors: the shipped files load, signatures are checked as the vendors sign, and
payload items map to events or are ignored (DESIGN §9)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from streams.core.resources import connectors_dir
from streams.wire.connectors import (
    ConnectorError,
    Unverified,
    load_connector,
    load_connectors,
)

SECRET = b"s3cret"
URL = "https://collect.example.com/v1/webhooks/hubspot"


@pytest.fixture(scope="module")
def shipped():
    return load_connectors(connectors_dir())


def hubspot_headers(body: bytes, ts: int, uri: str = URL) -> dict[str, str]:
    mac = hmac.new(SECRET, b"POST" + uri.encode() + body + str(ts).encode(), hashlib.sha256)
    return {"X-HubSpot-Signature-v3": base64.b64encode(mac.digest()).decode(),
            "X-HubSpot-Request-Timestamp": str(ts)}


def test_the_shipped_connectors_load(shipped):
    assert set(shipped) == {"hubspot", "segment"}


def test_hubspot_v3_signature_window_and_url_decoding(shipped):
    check = shipped["hubspot"].verification.check
    body, now = b'[{"eventId": 1}]', 1_800_000_000_000
    check(SECRET, "POST", URL, body, hubspot_headers(body, now), now)
    check(SECRET, "POST", URL, body, hubspot_headers(body, now - 299_000), now)
    with pytest.raises(Unverified, match="300 s"):
        check(SECRET, "POST", URL, body, hubspot_headers(body, now - 301_000), now)
    with pytest.raises(Unverified, match="does not match"):
        check(SECRET, "POST", URL, body + b" ", hubspot_headers(body, now), now)
    with pytest.raises(Unverified, match="does not match"):
        check(b"other", "POST", URL, body, hubspot_headers(body, now), now)
    with pytest.raises(Unverified, match="missing"):
        check(SECRET, "POST", URL, body, {}, now)
    # HubSpot signs the URI with %3A, %2F, %40 ... decoded
    encoded = URL + "?a=1%3A2%40x%2fy"
    check(SECRET, "POST", encoded, body,
          hubspot_headers(body, now, URL + "?a=1:2@x/y"), now)


def test_segment_signs_the_body_with_hex_sha1(shipped):
    check = shipped["segment"].verification.check
    body = b'{"type": "track"}'
    good = hmac.new(SECRET, body, hashlib.sha1).hexdigest()
    check(SECRET, "POST", "http://x/", body, {"X-Signature": good}, 0)
    with pytest.raises(Unverified):
        check(SECRET, "POST", "http://x/", body,
              {"X-Signature": hmac.new(SECRET, body, hashlib.sha256).hexdigest()}, 0)


def test_segment_items_map_by_event_name_and_unknown_names_are_ignored(shipped):
    segment = shipped["segment"]
    track = {"type": "track", "event": "Demo Requested", "userId": "u1", "messageId": "m1",
             "timestamp": "2026-11-20T10:00:00.000Z"}
    (mapped,) = segment.map(track)
    assert mapped.event == {"source": "WEB", "event_id": "segment-m1", "lead_id": "u1",
                            "occurred_at": "2026-11-20T10:00:00.000Z",
                            "activity": "DEMO_REQUESTED"}
    (mapped,) = segment.map({**track, "event": "Something Else"})
    assert mapped.ignored and mapped.event is None
    (mapped,) = segment.map({**track, "type": "alias"})
    assert mapped.ignored
    (mapped,) = segment.map({key: v for key, v in track.items() if key != "userId"})
    assert mapped.problem is not None and "lead_id" in mapped.problem
    (mapped,) = segment.map({**track, "timestamp": None,
                             "originalTimestamp": "2026-11-20T09:00:00Z"})
    assert mapped.event["occurred_at"] == "2026-11-20T09:00:00Z"
    assert list(segment.map("not an object")) == []


@pytest.mark.parametrize(("text", "message"), [
    ("verify: {}\nrules: []\n", "rules must be a non-empty list"),
    ("rules: [{event: {event_id: a, lead_id: b, occurred_at: c, activity: NOPE}}]\n"
     "verify: {algorithm: sha256, encoding: hex, secret_env: X, signature_header: S, "
     "signed: '{body}'}\n", "unknown activity"),
    ("rules: [{event: {event_id: a, lead_id: b, occurred_at: c, activity: CONTACTED}}]\n"
     "verify: {algorithm: md5, encoding: hex, secret_env: X, signature_header: S, "
     "signed: '{body}'}\n", "algorithm"),
    ("rules: [{event: {event_id: a, lead_id: b, occurred_at: c, activity: CONTACTED}}]\n"
     "verify: {algorithm: sha256, encoding: hex, secret_env: X, signature_header: S, "
     "signed: '{method}{url}'}\n", "must include"),
    ("rules: [{event: {event_id: a, lead_id: b, occurred_at: c, activity: CONTACTED}}]\n"
     "verify: {algorithm: sha256, encoding: hex, secret_env: X, signature_header: S, "
     "signed: '{body}{timestamp}'}\n", "go together"),
    ("rules: [{event: {event_id: a, occurred_at: c, activity: CONTACTED}}]\n"
     "verify: {algorithm: sha256, encoding: hex, secret_env: X, signature_header: S, "
     "signed: '{body}'}\n", "needs lead_id"),
])
def test_bad_connector_files_are_refused_with_the_reason(tmp_path, text, message):
    path = tmp_path / "crm.yaml"
    path.write_text(text)
    with pytest.raises(ConnectorError, match=message):
        load_connector(path)


def test_literal_text_in_the_signed_template_is_signed_as_text(tmp_path):
    # literal text between placeholders, even the word "body", is signed as that text
    path = tmp_path / "stripeish.yaml"
    path.write_text(
        "rules: [{event: {event_id: a, lead_id: b, occurred_at: c, activity: CONTACTED}}]\n"
        "verify: {algorithm: sha256, encoding: hex, secret_env: X, signature_header: S,\n"
        "         signed: '{timestamp}body{body}', timestamp_header: T, timestamp_unit: s}\n")
    check = load_connector(path).verification.check
    body, ts = b'{"x": 1}', 1_800_000_000
    good = hmac.new(SECRET, f"{ts}body".encode() + body, hashlib.sha256).hexdigest()
    check(SECRET, "POST", "http://x/", body, {"S": good, "T": str(ts)}, ts * 1000)
    path.write_text(path.read_text().replace("{timestamp}body", "{timestamp}{bdy}"))
    with pytest.raises(ConnectorError, match="unknown placeholder"):
        load_connector(path)
