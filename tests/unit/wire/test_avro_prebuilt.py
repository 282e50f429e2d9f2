"""The shipped schemas' generated codecs run from avro_prebuilt.py, compiled with the hot modules,
and do what the same source run by exec does (avro_codegen.py). Their agreement with fastavro is
test_avro_decoder.py's and test_avro_encoder.py's, which build the same codecs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streams
from streams.tools import prebuilt_codecs
from streams.wire import avro_codegen, avro_prebuilt
from streams.wire.avro import HEADER_SIZE, MAGIC, avro_codec
from streams.wire.avro_decoder import compile_decoder
from streams.wire.avro_encoder import _long, compile_encoder
from tests.unit.wire.avro_records import records

CODEC = avro_codec()
ROOT = Path(__file__).resolve().parents[3]
NAMES = sorted(CODEC.current)


def _codecs(name: str) -> tuple[Any, Any]:
    schema = CODEC.current[name]
    return compile_decoder(schema.json), compile_encoder(schema.json, MAGIC + schema.fingerprint)


def _by_exec(make: Callable[[], Any]) -> Any:
    """What `make` builds with no prebuilt function to find: the source run by exec."""
    kept = avro_codegen.FACTORIES
    avro_codegen.FACTORIES = {}
    try:
        return make()
    finally:
        avro_codegen.FACTORIES = kept


def test_the_module_is_what_the_generators_make_of_the_shipped_schemas() -> None:
    assert prebuilt_codecs.TARGET.read_text() == prebuilt_codecs.render(), \
        "a schema or a generator changed: run `make codecs`"


@pytest.mark.parametrize("name", NAMES)
def test_each_shipped_schema_is_read_and_written_by_the_compiled_copy(name: str) -> None:
    assert streams.running_compiled(avro_prebuilt)
    for made in _codecs(name):
        assert made.__module__ == "streams.wire.avro_prebuilt"
    for made in _by_exec(lambda: _codecs(name)):
        assert made.__module__ != "streams.wire.avro_prebuilt"


def _outcome(function: Callable[..., Any], *args: Any) -> Any:
    try:
        return "returned", function(*args)
    except Exception as exc:
        return "raised", type(exc)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow,
                                                   HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_compiled_copy_does_what_the_source_does(name: str, data: st.DataObject) -> None:
    decode, encode = _codecs(name)
    decode_src, encode_src = _by_exec(lambda: _codecs(name))
    record = data.draw(records(CODEC.current[name].json))
    encoded = encode(record)
    assert encoded == encode_src(record)
    body = encoded[HEADER_SIZE:]
    assert decode(body, 0) == decode_src(body, 0)
    damaged = bytearray(body)
    if damaged:
        at = data.draw(st.integers(0, len(damaged) - 1))
        damaged[at] = data.draw(st.integers(0, 255))
    cut = bytes(damaged[:data.draw(st.integers(0, len(damaged)))])
    assert _outcome(decode, cut, 0) == _outcome(decode_src, cut, 0)
    # a value that does not fit: the same exception from both
    if record:
        field = data.draw(st.sampled_from(sorted(record)))
        bad = {**record, field: data.draw(st.sampled_from([None, 2**64, "x", {"a": 1}, 1.5]))}
        assert _outcome(encode, bad) == _outcome(encode_src, bad)


def _explained(function: Callable[..., Any], *args: Any) -> Any:
    try:
        return "returned", function(*args)
    except Exception as exc:
        return "raised", type(exc), str(exc)


_LEAD = b"\x02e\x02L\x00"  # a LeadActivity's event_id "e", lead_id "L" and occurred_at 0


@pytest.mark.parametrize("body", [
    _long(2**63 - 1) + b"e",                        # a length past any body, near 2**63
    _long(2**62) + b"e",
    _LEAD + _long(2**61),                           # source's index as a long varint
    _LEAD + _long(2**62 - 1),
    _LEAD + _long(2**62),                           # twice it would not fit 64 bits
    _LEAD + _long(2**63 - 1),
    _LEAD + _long(-2**63),
    _LEAD + b"\x02\x02" + b"\x00" * 6 + _long(-2**63) + b"\x00",  # the lowest block count
    _LEAD + b"\x02\x02" + b"\x00" * 6 + _long(2**63 - 1),
])
def test_extreme_lengths_indexes_and_counts_are_refused_as_the_source_refuses_them(
        body: bytes) -> None:
    """The compiled decoder keeps lengths, indexes and counts in 64-bit C integers: none of
    these may wrap around into a different outcome, message included."""
    decode = _codecs("LeadActivity")[0]
    decode_src = _by_exec(lambda: _codecs("LeadActivity"))[0]
    outcome = _explained(decode, body, 0)
    assert outcome[0] == "raised"
    assert outcome == _explained(decode_src, body, 0)


def test_a_body_in_a_bytearray_or_memoryview_is_read_as_bytes_are() -> None:
    record = {"event_id": "e-1", "lead_id": "L-1", "occurred_at": 1_700_000_000_000,
              "source": "WEB", "activity": "PAGE_VIEWED", "attributes": {"page": "/pricing"}}
    value = CODEC.encode("LeadActivity", record)
    expected = CODEC.decode(value)
    assert CODEC.decode(bytearray(value)) == expected
    assert CODEC.decode(memoryview(value)) == expected


def test_interpreted_without_cython_installed_the_codecs_are_made_by_exec() -> None:
    """avro_prebuilt.py imports `cython` for its declarations: a machine that runs the package
    interpreted and has no Cython installed makes every codec from its source instead."""
    script = (
        "import sys; sys.modules['cython'] = None\n"
        "from streams.wire.avro import avro_codec\n"
        "codec = avro_codec()\n"
        "value = codec.encode('LeadStage', {'lead_id': 'L', 'stage': 'hot', 'since': 1, "
        "'sequence': 2, 'definitions_version': 3})\n"
        "print(codec.decode(value)[1]['stage'], codec._writers['LeadStage'].__module__)\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "LEADSTAGE_COMPILED": "0"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["hot", "None"]  # exec'd in a namespace, not the module
