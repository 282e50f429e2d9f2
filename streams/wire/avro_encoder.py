"""An encoder generated once per Avro schema (Python source, like avro_decoder.py), for the
worker's output records: every stage change writes a LeadStageChanged and a LeadStage.

Why not fastavro here: `schemaless_writer` walks the parsed schema and a file-like object for
every record, about 7 µs for a LeadStageChanged; straight-line code joining byte strings writes
the same bytes in less than half that (bench/README.md). It writes exactly fastavro's bytes
(tests/unit/wire/test_avro_encoder.py compares them on generated records), including a missing
field taking its default, and raises ValueError, TypeError, KeyError or AttributeError where a
value does not fit its type. Schemas with types it does not generate (unions other than null
and one type, fixed, named references) are left to fastavro.
"""

from __future__ import annotations

from collections.abc import Callable
from struct import Struct
from typing import Any

from streams.wire.avro_codegen import SourceWriter, Unsupported

Encoder = Callable[[Any], bytes]
_MIN_LONG, _MAX_LONG = -(1 << 63), (1 << 63) - 1
_SMALL = [bytes([n]) for n in range(128)]
#: the varint of each length below 64 (one byte)
_LENGTHS = [_SMALL[n << 1] for n in range(64)]


def _long(n: int) -> bytes:
    """A zig-zag varint (raises for a value outside 64 bits, or one that is not an int)."""
    if not _MIN_LONG <= n <= _MAX_LONG:
        raise ValueError(f"{n} does not fit 64 bits")
    if type(n) is not int and not isinstance(n, int):
        raise TypeError(f"{type(n).__name__} is not an integer")
    # compiled, v is a signed and z an unsigned 64-bit C integer (avro_encoder.pxd), so this
    # is C arithmetic, not Python objects; both hold any value the check above lets through
    v = n
    z = (v << 1) ^ (v >> 63)
    if z < 0x80:
        return _SMALL[z]
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _int(n: int) -> bytes:
    if not -(1 << 31) <= n < (1 << 31):
        raise ValueError(f"{n} does not fit 32 bits")
    return _long(n)


class _Codegen(SourceWriter):
    def value(self, schema: Any, indent: int, source: str) -> None:
        """Code that appends the encoding of `source` (an expression) to `parts`."""
        kind = schema if isinstance(schema, str) else (
            "union" if isinstance(schema, list) else schema.get("type"))
        if isinstance(kind, dict | list):
            self.value(kind, indent, source)
        elif kind == "null":
            self.emit(indent, f"if {source} is not None: raise ValueError('expected null')")
        elif kind == "boolean":
            self.emit(indent, f"parts.append(b'\\x01' if {source} else b'\\x00')")
        elif kind in ("int", "long"):
            # a small non-negative number (a sequence, a version) is one byte; any other int in
            # range (every timestamp) is _long's loop written out, with its C types, so it
            # costs no call; anything else goes to the checks of _int and _long, which raise
            x, v = self.var("x"), self.var("v", "cython.longlong")
            z, out = self.var("z", "cython.ulonglong"), self.var("o", "bytearray")
            low, high = (-(1 << 31), (1 << 31) - 1) if kind == "int" else (_MIN_LONG, _MAX_LONG)
            self.emit(indent, f"{x} = {source}")
            self.emit(indent, f"if 0 <= {x} < 64: parts.append(_LENGTHS[{x}])")
            self.emit(indent, f"elif type({x}) is int and {low} <= {x} <= {high}:")
            self.emit(indent + 1, f"{v} = {x}; {z} = ({v} << 1) ^ ({v} >> 63); "
                                  f"{out} = bytearray()")
            self.emit(indent + 1, f"while {z} >= 0x80: "
                                  f"{out}.append(({z} & 0x7F) | 0x80); {z} >>= 7")
            self.emit(indent + 1, f"{out}.append({z}); parts.append({out})")
            self.emit(indent, f"else: parts.append(_{kind}({x}))")
        elif kind in ("float", "double"):
            packer = self.constant("pack", Struct("<f" if kind == "float" else "<d").pack)
            self.emit(indent, f"parts.append({packer}({source}))")
        elif kind == "string":
            # typed text, bytes and length once compiled: str.encode and len in C, no lookups;
            # anything but text raises TypeError, compiled or not
            t, d = self.var("t", "str"), self.var("d", "bytes")
            n = self.var("n", "cython.Py_ssize_t")
            self.emit(indent, f"{t} = {source}")
            self.emit(indent, f"if not isinstance({t}, str): raise TypeError('expected text')")
            self.emit(indent, f"{d} = {t}.encode(); {n} = len({d})")
            self.emit(indent, f"parts.append(_LENGTHS[{n}] if {n} < 64 else _long({n}))")
            self.emit(indent, f"parts.append({d})")
        elif kind == "bytes":
            v = self.var("b")
            self.emit(indent, f"{v} = bytes({source}); parts.append(_long(len({v}))); "
                              f"parts.append({v})")
        elif kind == "enum":
            index = self.constant("symbols", {s: _long(i) for i, s in enumerate(schema["symbols"])})
            self.emit(indent, f"parts.append({index}[{source}])")
        elif kind == "union":
            branches = [b for b in schema if b != "null"]
            if len(schema) != 2 or len(branches) != 1:
                raise Unsupported("a union other than null and one type")
            v = self.var("u")
            null_first = schema[0] == "null"
            self.emit(indent, f"{v} = {source}")
            self.emit(indent, f"if {v} is None: parts.append({_SMALL[0 if null_first else 2]!r})")
            self.emit(indent, "else:")
            self.emit(indent + 1, f"parts.append({_SMALL[2 if null_first else 0]!r})")
            self.value(branches[0], indent + 1, v)
        elif kind == "map":
            m, k, item = self.var("m"), self.var("k"), self.var("v")
            self.emit(indent, f"{m} = {source}")
            self.emit(indent, f"if {m}:")
            self.emit(indent + 1, f"parts.append(_LENGTHS[len({m})] if len({m}) < 64 "
                                  f"else _long(len({m})))")
            self.emit(indent + 1, f"for {k}, {item} in {m}.items():")
            self.value("string", indent + 2, k)
            self.value(schema["values"], indent + 2, item)
            self.emit(indent, "parts.append(b'\\x00')")
        elif kind == "array":
            a, item = self.var("a"), self.var("v")
            self.emit(indent, f"{a} = {source}")
            self.emit(indent, f"if {a}:")
            self.emit(indent + 1, f"parts.append(_LENGTHS[len({a})] if len({a}) < 64 "
                                  f"else _long(len({a})))")
            self.emit(indent + 1, f"for {item} in {a}:")
            self.value(schema["items"], indent + 2, item)
            self.emit(indent, "parts.append(b'\\x00')")
        elif kind == "record":
            r = self.var("r", "dict")
            self.emit(indent, f"{r} = {source}")
            self.emit(indent, f"if not isinstance({r}, dict): raise TypeError('expected a dict')")
            for f in schema["fields"]:
                if "default" in f:  # fastavro writes a missing field's default
                    if _bytes_like(f["type"]):
                        raise Unsupported("a default of bytes or fixed (JSON text)")
                    get = f"{r}.get({f['name']!r}, {self.constant('default', f['default'])})"
                else:
                    get = f"{r}.get({f['name']!r})"
                field_value = self.var("f")
                self.emit(indent, f"{field_value} = {get}")
                self.value(f["type"], indent, field_value)
        else:
            raise Unsupported(str(kind))


def _bytes_like(schema: Any) -> bool:
    if isinstance(schema, list):
        return any(_bytes_like(s) for s in schema)
    kind = schema.get("type") if isinstance(schema, dict) else schema
    return kind in ("bytes", "fixed") or (isinstance(kind, dict | list) and _bytes_like(kind))


def compile_encoder(schema: dict[str, Any], prefix: bytes = b"") -> Encoder | None:
    """record -> `prefix` and its Avro body (a single-object header is written with the body,
    not copied in front of it), or None when the schema uses a type left to fastavro."""
    gen = _Codegen()
    gen.declare("parts", "list")
    encoder: Encoder | None = gen.function(
        lambda: gen.value(schema, 1, "datum"),
        ["def encode(datum):", f"    parts = [{prefix!r}]"],
        ["    return b''.join(parts)"], f"<avro encoder {schema.get('name', '')}>",
        {"_long": _long, "_int": _int, "_LENGTHS": _LENGTHS})
    return encoder
