"""The varint helpers do their arithmetic on 64-bit C integers when compiled (the .pxd beside
each module): every result and every refusal is the interpreted source's, at every edge."""

from __future__ import annotations

import importlib.util
import io
from types import ModuleType

import pytest
from fastavro.io.binary_encoder import BinaryEncoder
from hypothesis import given
from hypothesis import strategies as st

import streams
from streams.wire import avro_decoder, avro_encoder

EDGES = [0, 1, -1, 63, -64, 64, -65, 8191, 8192, 2**31 - 1, -2**31, 2**53 + 1,
         1_786_121_542_074, 2**62, -2**62 - 1, 2**63 - 1, -2**63]


def _interpreted(module: ModuleType) -> ModuleType:
    """The module's source, loaded on its own, whatever the package runs."""
    spec = importlib.util.spec_from_file_location(
        f"{module.__name__}_interpreted", streams.source_of(module.__name__))
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


DECODER, ENCODER = _interpreted(avro_decoder), _interpreted(avro_encoder)


def _fastavro(n: int) -> bytes:
    out = io.BytesIO()
    BinaryEncoder(out).write_long(n)
    return out.getvalue()


def _outcome(varint: object, data: bytes) -> object:
    try:
        return varint(data, 1, data[0])  # type: ignore[operator]
    except Exception as exc:  # the refusal itself is compared
        return type(exc).__name__, str(exc)


def test_the_tested_build_runs_them_compiled() -> None:
    assert streams.running_compiled(avro_decoder) and streams.running_compiled(avro_encoder)
    assert not streams.running_compiled(DECODER)


@pytest.mark.parametrize("n", EDGES)
def test_every_edge_of_64_bits_is_written_as_fastavro_writes_it_and_read_back(n: int) -> None:
    data = _fastavro(n)
    assert avro_encoder._long(n) == ENCODER._long(n) == data
    if len(data) > 1:  # one byte is read inline by the generated code
        assert avro_decoder._varint(data, 1, data[0]) == (n, len(data))


@given(st.integers(-2**63, 2**63 - 1))
def test_any_64_bit_value_round_trips(n: int) -> None:
    data = avro_encoder._long(n)
    assert data == _fastavro(n)
    if len(data) > 1:
        assert avro_decoder._varint(data + b"\x00", 1, data[0]) == (n, len(data))


@pytest.mark.parametrize("n", [2**63, -2**63 - 1, 2**200, 1.5, 2.0, "3", None])
def test_what_does_not_fit_64_bits_is_refused_as_the_source_refuses_it(n: object) -> None:
    with pytest.raises((ValueError, TypeError)) as compiled:
        avro_encoder._long(n)  # type: ignore[arg-type]
    with pytest.raises((ValueError, TypeError)) as interpreted:
        ENCODER._long(n)
    assert (compiled.type, str(compiled.value)) == (interpreted.type, str(interpreted.value))


@pytest.mark.parametrize("data", [
    b"\xff" * 10 + b"\x01",                      # 11 bytes
    b"\xff" * 9 + b"\x02",                       # a 65th bit
    b"\xff" * 9 + b"\x7f",                       # bits 65 to 70
    b"\xff" * 9 + b"\x81\x00",                   # the 64th bit, then an 11th byte
    b"\xff" * 9 + b"\x82\x00",                   # a 65th bit, then an 11th byte
    b"\xff" * 9 + b"\x01",                       # the 64th bit: the lowest long
    b"\xfe" + b"\xff" * 8 + b"\x01",             # the highest long
    b"\xff\xff",                                 # ends early
    b"\x80\x00",                                 # a zero written in two bytes
])
def test_malformed_and_extreme_varints_are_read_as_the_source_reads_them(data: bytes) -> None:
    assert _outcome(avro_decoder._varint, data) == _outcome(DECODER._varint, data)


def test_a_bytearray_body_is_read_too() -> None:
    assert avro_decoder._varint(bytearray(b"\x80\x01"), 1, 0x80) == (64, 2)
