"""A fault-test workload: realistic events, 20% delivered twice, poison of every kind."""

from __future__ import annotations

import random
import time
from typing import Any

from streams.wire.avro import avro_codec

KINDS = ["CONTACTED", "PAGE_VIEWED", "PRICING_VIEWED", "DEMO_REQUESTED", "EMAIL_CLICKED",
         "DECISION_TIMELINE_PROVIDED", "STAGE_ASSESSED", "SALES_ACCEPTED", "UNKNOWN"]
WEIGHTS = [15, 30, 10, 6, 15, 8, 5, 3, 2]
MS_PER_DAY = 86_400_000


def record(event: dict[str, Any]) -> tuple[bytes, bytes]:
    full = {"source": "WEB", "decision_by": None, "amount": None, "currency": None,
            "team": None, "assessed_stage": None, "reason": None, "attributes": {}, **event}
    return event["lead_id"].encode(), avro_codec().encode("LeadActivity", full)


def poison(rng: random.Random, good: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    key, value = good
    kind = rng.randrange(4)
    if kind == 0:
        return key, rng.randbytes(rng.randrange(1, 200))
    if kind == 1:
        return key, value[: rng.randrange(11, len(value))]  # truncated body
    if kind == 2:
        return key, b"\xc3\x01" + rng.randbytes(8) + value[10:]  # unknown fingerprint
    return b"someone-else", value  # key is not the lead id


def workload(events: int, leads: int, poison_records: int, seed: int = 5
             ) -> list[tuple[bytes, bytes]]:
    """Records in the order they are produced; occurred_at within the last six hours, decision
    dates 30 to 400 days ahead, so time alone changes no stage while a test runs."""
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    day = now // MS_PER_DAY
    out: list[tuple[bytes, bytes]] = []
    for i in range(events):
        lead = f"F{rng.randrange(leads)}"
        kind = rng.choices(KINDS, WEIGHTS)[0]
        event: dict[str, Any] = {"event_id": f"f{seed}-{i}", "lead_id": lead, "activity": kind,
                                 "occurred_at": now - rng.randrange(6 * 3_600_000)}
        if kind == "DECISION_TIMELINE_PROVIDED":
            event["decision_by"] = day + rng.choice([30, 90, 170, 400])
        if kind == "STAGE_ASSESSED":
            event["team"] = rng.choice(["MARKETING", "SALES"])
            event["assessed_stage"] = rng.choice(["cold", "warm", "hot"])
        if rng.random() < 0.005:
            event["activity"] = "ERASURE_REQUESTED"
        out.append(record(event))
        if rng.random() < 0.2:  # delivered twice, not necessarily right after
            out.insert(rng.randrange(max(1, len(out) - 50), len(out) + 1), out[-1])
    good = list(out)
    for _ in range(poison_records):
        out.insert(rng.randrange(len(out) + 1), poison(rng, rng.choice(good)))
    return out
