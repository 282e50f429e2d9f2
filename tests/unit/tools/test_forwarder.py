"""The forwarder's pure parts: signatures, bodies, Retry-After, and what may be committed."""

from __future__ import annotations

import email.utils
import json
import time

from streams.tools.forwarder import _Partition, body_of, retry_after, sign, verify

CHANGE = {"event_id": "L:2", "lead_id": "L", "sequence": 2, "previous_stage": "warm",
          "stage": "hot", "changed_at": 1_795_000_000_000, "cause": "EVENT",
          "cause_event_id": "e9", "definitions_version": 1, "reason": "hot: deciding_soon",
          "facts": {"contacts": "1"}}


def test_a_signature_verifies_only_for_its_body_secret_and_time():
    body = body_of(CHANGE, "json")
    header = sign(b"secret", body)
    assert verify(b"secret", header, body)
    assert not verify(b"other", header, body)
    assert not verify(b"secret", header, body + b" ")
    assert not verify(b"secret", sign(b"secret", body, now=int(time.time()) - 3600), body)
    assert not verify(b"secret", "garbage", body)


def test_bodies_carry_the_change_or_a_slack_text():
    doc = json.loads(body_of(CHANGE, "json"))
    assert doc["changed_at"] == "2026-11-18T11:06:40Z" and doc["facts"] == {"contacts": "1"}
    assert set(doc) == set(CHANGE)
    text = json.loads(body_of({**CHANGE, "stage": None}, "slack"))["text"]
    assert text.startswith("Lead L: warm → no stage (left the population) (event).")


def test_retry_after_in_seconds_or_as_a_date():
    assert retry_after("1") == 1.0 and retry_after("0") == 0.0
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= (retry_after(later) or 0) <= 31
    assert retry_after(None) is None and retry_after("soon") is None


def test_offsets_are_committed_only_up_to_the_lowest_change_not_done():
    part = _Partition()
    for offset in (10, 11, 12, 13):
        part.pending.add(offset)
    part.next_offset = 14
    part.pending -= {11, 12}  # later leads finished first
    assert part.committable() == 10
    part.pending.discard(10)
    assert part.committable() == 13
    part.pending.discard(13)
    assert part.committable() == 14
