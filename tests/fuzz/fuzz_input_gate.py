"""atheris fuzz target: the worker's path without a broker (input gate, then the stage machine
and the encoding of the state and every output record) and the JSON-lines parser.

    make fuzz                      # bounded run (FUZZ_SECONDS, default 60), memory capped
    .venv/bin/python tests/fuzz/fuzz_input_gate.py -max_total_time=60 -rss_limit_mb=1024 CORPUS

Nothing may escape as an exception: the gate returns a dead letter for anything it cannot use,
whatever it admits the core can apply and every record it leads to fits its bound; the parser
raises only InvalidEvent.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from streams.core.definitions.compiler import compile_definitions
    from streams.core.definitions.loader import load_file
    from streams.core.lead_state import MAX_STATE_BYTES, LeadState, dumps
    from streams.core.stage_machine import StageMachine
    from streams.wire.avro import avro_codec
    from streams.wire.gate import APPLY, DEAD, DLQ_RECORD_LIMIT, IGNORE, admit
    from streams.wire.json_lines import parse_line
    from streams.wire.validation import InvalidEvent

NOW = int(time.time() * 1000)
MACHINE = StageMachine(compile_definitions(load_file(
    Path(__file__).resolve().parents[2] / "definitions" / "lead-stages.yaml")))


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
    outcome, payload = admit(key, rest, NOW)
    assert outcome in (APPLY, IGNORE, DEAD)
    if outcome == DEAD:
        dlq_key, dlq_value, headers = payload.record("lead-activity", 0, 0)
        size = len(dlq_key or b"") + len(dlq_value or b"") + sum(len(k) + len(v)
                                                                 for k, v in headers)
        assert size <= DLQ_RECORD_LIMIT
    elif outcome == APPLY:
        state, signals = LeadState(payload["lead_id"]), []
        if payload["activity"] == "ERASURE_REQUESTED":
            MACHINE.erase(state, payload, signals)
        else:
            MACHINE.apply(state, payload, signals)
        for change in state.unpublished():
            avro_codec().encode("LeadStageChanged", change)
        assert len(dumps(state)) <= MAX_STATE_BYTES


def seed_corpus(folder: Path) -> None:
    """Valid records, so the fuzzer starts deep inside the decoder."""
    folder.mkdir(parents=True, exist_ok=True)
    base = {"event_id": "e1", "lead_id": "L1", "occurred_at": NOW - 1000, "source": "WEB",
            "activity": "DECISION_TIMELINE_PROVIDED", "decision_by": 20_900, "amount": 12.5,
            "currency": "EUR", "team": None, "assessed_stage": None, "reason": None,
            "attributes": {"utm": "x"}}
    for i, activity in enumerate(["CONTACTED", "DECISION_TIMELINE_PROVIDED", "STAGE_ASSESSED"]):
        record = {**base, "activity": activity, "team": "SALES", "assessed_stage": "hot"}
        value = avro_codec().encode("LeadActivity", record)
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
