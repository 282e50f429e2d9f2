"""atheris fuzz target: the worker's input gate (decode + validate) and the JSON-lines parser.

    make fuzz                      # bounded run (FUZZ_SECONDS, default 60), memory capped
    .venv/bin/python tests/fuzz/fuzz_input_gate.py -max_total_time=60 -rss_limit_mb=1024 CORPUS

Nothing may escape as an exception: the gate returns a dead letter for anything it cannot use,
the parser raises only InvalidEvent.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from streams.activity_json import parse_line
    from streams.activity_validation import InvalidEvent
    from streams.avro_codec import registry
    from streams.input_gate import APPLY, DEAD, IGNORE, admit

NOW = int(time.time() * 1000)


def fuzz(data: bytes) -> None:
    """Byte 0 picks the target: 0 gate without key, 1 gate with a key (its length in byte 1),
    2 the JSON-lines parser."""
    if not data:
        return
    mode, rest = data[0] % 3, data[1:]
    if mode == 2:
        with contextlib.suppress(InvalidEvent):
            parse_line(rest.decode("utf-8", errors="replace"))
        return
    key = None
    if mode == 1 and rest:
        size, rest = rest[0] % 65, rest[1:]
        key, rest = rest[:size], rest[size:]
    outcome, _ = admit(key, rest, NOW)
    assert outcome in (APPLY, IGNORE, DEAD)


def seed_corpus(folder: Path) -> None:
    """Valid records, so the fuzzer starts deep inside the decoder."""
    folder.mkdir(parents=True, exist_ok=True)
    base = {"event_id": "e1", "lead_id": "L1", "occurred_at": NOW - 1000, "source": "WEB",
            "activity": "DECISION_TIMELINE_PROVIDED", "decision_by": 20_900, "amount": 12.5,
            "currency": "EUR", "team": None, "assessed_stage": None, "reason": None,
            "attributes": {"utm": "x"}}
    for i, activity in enumerate(["CONTACTED", "DECISION_TIMELINE_PROVIDED", "STAGE_ASSESSED"]):
        record = {**base, "activity": activity, "team": "SALES", "assessed_stage": "hot"}
        value = registry().encode("LeadActivity", record)
        (folder / f"avro-{i}").write_bytes(b"\x00" + value)
        (folder / f"keyed-{i}").write_bytes(b"\x01\x02L1" + value)
    (folder / "json-0").write_bytes(
        b"\x02" + b'{"event_id":"e","lead_id":"L","occurred_at":"2026-11-26T10:00:00Z",'
        b'"activity":"CONTACTED"}')


if __name__ == "__main__":
    corpus = [a for a in sys.argv[1:] if not a.startswith("-")]
    if corpus:
        seed_corpus(Path(corpus[0]))
    atheris.Setup(sys.argv, fuzz)
    atheris.Fuzz()
