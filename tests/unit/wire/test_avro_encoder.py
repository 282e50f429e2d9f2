"""The generated Avro encoder writes fastavro's bytes, byte for byte, for every current schema."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.wire.avro import avro_codec
from streams.wire.avro_encoder import compile_encoder
from tests.unit.wire.avro_records import records

CODEC = avro_codec()
def fastavro_bytes(name: str, record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, CODEC.current[name].parsed, record)
    return out.getvalue()


@pytest.mark.parametrize("name", sorted(CODEC.current))
def test_every_current_schema_gets_a_generated_encoder(name: str) -> None:
    assert compile_encoder(CODEC.current[name].json) is not None


@pytest.mark.parametrize("name", sorted(CODEC.current))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow,
                                                   HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_same_bytes_as_fastavro(name: str, data: st.DataObject) -> None:
    schema = CODEC.current[name]
    record = data.draw(records(schema.json))
    encoder = compile_encoder(schema.json)
    assert encoder is not None
    assert encoder(record) == fastavro_bytes(name, record)
    assert CODEC.encode(name, record)[10:] == fastavro_bytes(name, record)


@pytest.mark.parametrize(("field", "bad"), [
    ("sequence", 2**63), ("definitions_version", 2**31), ("stage", 5), ("cause", "LATER"),
    ("lead_id", None), ("facts", {"a": 1}),
    ("sequence", 1.0), ("sequence", "1"), ("sequence", None), ("sequence", -2**63 - 1),
    ("definitions_version", 1.5), ("definitions_version", -2**31 - 1),
])
def test_a_value_that_does_not_fit_its_type_raises(field: str, bad: Any) -> None:
    change = {"event_id": "L:1", "lead_id": "L", "sequence": 1, "previous_stage": None,
              "stage": "warm", "changed_at": 0, "cause": "EVENT", "cause_event_id": None,
              "definitions_version": 1, "reason": "r", "facts": {}}
    CODEC.encode("LeadStageChanged", change)  # fits as it is
    with pytest.raises((ValueError, TypeError, KeyError, AttributeError)):
        CODEC.encode("LeadStageChanged", {**change, field: bad})
