"""The shipped schemas' generated codecs run from avro_prebuilt.py, compiled with the hot modules,
and do what the same source run by exec does (avro_codegen.py). Their agreement with fastavro is
test_avro_decoder.py's and test_avro_encoder.py's, which build the same codecs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streams
from streams.tools import prebuilt_codecs
from streams.wire import avro_prebuilt
from streams.wire.avro import HEADER_SIZE, MAGIC, registry
from streams.wire.avro_decoder import compile_decoder
from streams.wire.avro_encoder import compile_encoder
from tests.unit.wire.avro_records import records

CODEC = registry()
NAMES = sorted(CODEC.current)


def _codecs(name: str) -> tuple[Any, Any]:
    schema = CODEC.current[name]
    return compile_decoder(schema.json), compile_encoder(schema.json, MAGIC + schema.fingerprint)


def _by_exec(make: Callable[[], Any]) -> Any:
    """What `make` builds with no prebuilt function to find: the source run by exec."""
    kept = avro_prebuilt.FACTORIES
    avro_prebuilt.FACTORIES = {}
    try:
        return make()
    finally:
        avro_prebuilt.FACTORIES = kept


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
