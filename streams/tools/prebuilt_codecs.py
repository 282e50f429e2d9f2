"""`make codecs`: writes streams/wire/avro_prebuilt.py, the Avro codecs the shipped schemas give
(a decoder and an encoder per current schema), as source for Cython to compile with the hot
modules (streams/wire/avro_codegen.py says why). Run it after changing a schema in schemas/ or
a generator; tests/unit/wire/test_avro_prebuilt.py fails until then."""

from __future__ import annotations

import sys
from pathlib import Path

from streams.wire import avro_codegen
from streams.wire.avro import MAGIC, AvroCodec
from streams.wire.avro_decoder import compile_decoder
from streams.wire.avro_encoder import compile_encoder

TARGET = Path(__file__).resolve().parents[1] / "wire" / "avro_prebuilt.py"


def render() -> str:
    """avro_prebuilt.py's text for the schemas in the package's schema folder."""
    earlier = dict(avro_codegen.generated)
    avro_codegen.generated.clear()
    try:
        for schema in AvroCodec().current.values():
            compile_decoder(schema.json)
            compile_encoder(schema.json, MAGIC + schema.fingerprint)
        return avro_codegen.prebuilt_module(dict(avro_codegen.generated))
    finally:
        avro_codegen.generated.clear()
        avro_codegen.generated.update(earlier)


def main() -> int:
    text = render()
    if TARGET.exists() and TARGET.read_text() == text:
        print(f"{TARGET} is up to date")
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}: rebuild the compiled modules (make .venv)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
