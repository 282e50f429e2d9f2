"""The single-object Avro codec registered with Faust, so Faust topics read and write it.

Use `value_serializer="avro-LeadStageChanged"` (or `avro-LeadStage`, `avro-LeadActivity`) on a
Faust topic; call `register()` once before the app is created.
"""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

from streams.wire.avro import avro_codec


class AvroSingleObject(codecs.Codec):
    def __init__(self, record_type: str, **kwargs: Any) -> None:
        super().__init__(record_type=record_type, **kwargs)
        self.record_type = record_type

    def _dumps(self, obj: Any) -> bytes:
        return avro_codec().encode(self.record_type, obj)

    def _loads(self, s: bytes) -> Any:
        return avro_codec().decode(s, expect=self.record_type)[1]


def codec_name(record_type: str) -> str:
    return f"avro-{record_type}"


def register() -> None:
    for record_type in avro_codec().current:
        codecs.register(codec_name(record_type), AvroSingleObject(record_type))
