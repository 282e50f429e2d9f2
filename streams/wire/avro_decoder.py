"""A decoder generated once per Avro schema (Python source, like the definitions compiler), for
bodies written with the reader's own schema: the worker's every input record.

Why not fastavro here: its `schemaless_reader` walks the parsed schema for every record and pays
for a file-like object; for LeadActivity that is about 6 µs per record, most of the input gate
(bench/README.md). Straight-line code with the common one-byte varint inlined is about half that.
fastavro still decodes every body written with another schema (resolution to the reader's).

The generated decoder is stricter than fastavro, never more lenient: a boolean byte other than 0
or 1, a negative or out-of-range enum or union index, a negative length, a varint longer than 10
bytes or beyond 64 bits, or a body shorter than its lengths raise AvroBodyError; a body that
ends early raises IndexError and invalid UTF-8 UnicodeDecodeError (the AvroCodec turns each into a
dead letter). tests/unit/wire/test_avro_decoder.py checks it against fastavro on generated and
damaged bodies.
"""

from __future__ import annotations

from collections.abc import Callable
from struct import unpack_from
from typing import Any

from streams.wire.avro_codegen import SourceWriter, Unsupported

#: decode(data, pos) -> (value, position after it)
Decoder = Callable[[bytes, int], tuple[Any, int]]


class AvroBodyError(ValueError):
    """Bytes that are not a body of the schema."""


def _varint(data: bytes, pos: int, first: int) -> tuple[int, int]:
    """The rest of a zig-zag varint whose first byte (`first`, already read) had its high bit set;
    (value, position after it)."""
    # compiled, n and b are unsigned and value signed 64-bit C integers (avro_decoder.pxd), so
    # this is C arithmetic, not Python objects: no bit past the 64th is ever shifted in
    n = first & 0x7F
    shift = 7
    while True:
        b = data[pos]
        pos += 1
        if shift == 63 and b & 0x7E and not b & 0x80:  # the 10th byte holds the 64th bit only
            raise AvroBodyError("a varint beyond 64 bits")
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift > 63:
            raise AvroBodyError("a varint longer than 10 bytes")
    value = (n >> 1) ^ -(n & 1)
    return value, pos


def _encoded_index(data: bytes, pos: int, first: int) -> tuple[int, int]:
    """A multi-byte index varint as the one-byte path leaves it: twice a non-negative index, -1
    for a negative one or one past any schema's (twice it would not fit the 64-bit C integer
    the compiled decoder keeps it in); (that, position after it)."""
    n, pos = _varint(data, pos, first)
    return (n << 1 if 0 <= n < _INDEX_LIMIT else -1), pos


#: No union has this many branches nor an enum this many symbols.
_INDEX_LIMIT = 1 << 62


#: The C types of a compiled decoder's locals (avro_codegen.py): a body is bytes (the AvroCodec
#: passes it as such), positions are indexes, lengths and counts 64-bit, a byte an int.
_LONG = "cython.longlong"
_LOCALS = (("data", "bytes"), ("pos", "cython.Py_ssize_t"), ("end", "cython.Py_ssize_t"),
           ("b", "cython.int"), ("_size", _LONG), ("u", "cython.ulonglong"),
           ("w", "cython.ulonglong"), ("s", "cython.int"), ("z", _LONG))


class _Codegen(SourceWriter):
    def varint(self, indent: int, target: str) -> None:
        """The rest of a varint whose first byte `b` had its high bit set, into `target`: the
        loop of _varint written out, so a multi-byte value (every timestamp) costs no call and no
        tuple. Compiled, `u` and `w` are unsigned and `z` signed 64-bit C integers, as there."""
        self.emit(indent, "u = b & 0x7F; s = 7")
        self.emit(indent, "while True:")
        self.emit(indent + 1, "w = data[pos]; pos += 1")
        self.emit(indent + 1, "if s == 63 and w & 0x7E and not w & 0x80: "
                              "raise _Error('a varint beyond 64 bits')")
        self.emit(indent + 1, "u |= (w & 0x7F) << s")
        self.emit(indent + 1, "if not w & 0x80: break")
        self.emit(indent + 1, "s += 7")
        self.emit(indent + 1, "if s > 63: raise _Error('a varint longer than 10 bytes')")
        self.emit(indent, "z = (u >> 1) ^ -(u & 1)")
        self.emit(indent, f"{target} = z")

    def long(self, indent: int, target: str) -> None:
        """Read a zig-zag varint into `target` (the one-byte case first)."""
        self.emit(indent, "b = data[pos]; pos += 1")
        self.emit(indent, "if b & 0x80:")
        self.varint(indent + 1, target)
        self.emit(indent, f"else: {target} = (b >> 1) ^ -(b & 1)")

    def length(self, indent: int, target: str) -> None:
        """A length: a one-byte one needs only its sign bit tested and a shift."""
        self.emit(indent, "b = data[pos]; pos += 1")
        self.emit(indent, "if b & 0x80:")
        self.varint(indent + 1, target)
        self.emit(indent, "elif b & 1: raise _Error('a length outside the body')")
        self.emit(indent, f"else: {target} = b >> 1")
        # not `pos + length > end`: compiled, a length near 2**63 would wrap the sum
        self.emit(indent, f"if {target} < 0 or {target} > end - pos: "
                          f"raise _Error('a length outside the body')")

    def index(self, indent: int, target: str) -> None:
        """A union branch or enum symbol index into `target` still zig-zag encoded (twice the
        index; odd for a negative one): the one-byte case, nearly every one, is the byte."""
        self.emit(indent, "b = data[pos]; pos += 1")
        self.emit(indent, f"if b & 0x80: {target}, pos = _encoded_index(data, pos, b)")
        self.emit(indent, f"else: {target} = b")

    def value(self, schema: Any, indent: int, target: str) -> None:
        """Code that reads one value of `schema` into `target`; raises Unsupported otherwise."""
        kind = schema if isinstance(schema, str) else (
            "union" if isinstance(schema, list) else schema.get("type"))
        if isinstance(kind, dict | list):  # {"type": {...}}: a nested definition
            self.value(kind, indent, target)
        elif kind == "null":
            self.emit(indent, f"{target} = None")
        elif kind == "boolean":
            self.emit(indent, "b = data[pos]; pos += 1")
            self.emit(indent, "if b > 1: raise _Error('a boolean byte other than 0 or 1')")
            self.emit(indent, f"{target} = b == 1")
        elif kind in ("int", "long"):
            self.long(indent, target)
        elif kind in ("float", "double"):
            size, fmt = (4, "<f") if kind == "float" else (8, "<d")
            self.emit(indent, f"if pos + {size} > end: raise _Error('a number past the body')")
            self.emit(indent, f"{target} = _unpack({fmt!r}, data, pos)[0]; pos += {size}")
        elif kind in ("string", "bytes"):
            n = self.var("n", _LONG)
            self.length(indent, n)
            decode = ".decode()" if kind == "string" else ""
            self.emit(indent, f"{target} = data[pos:pos + {n}]{decode}; pos += {n}")
        elif kind == "enum":
            # by encoded index: the odd (negative) ones hold None
            symbols = self.constant("symbols", tuple(
                s for symbol in schema["symbols"] for s in (symbol, None)))
            i, symbol = self.var("i", _LONG), self.var("e")
            self.index(indent, i)  # -1, a negative index, reads the last None
            self.emit(indent, f"{symbol} = {symbols}[{i}] if {i} < {2 * len(schema['symbols'])} "
                              f"else None")
            self.emit(indent, f"if {symbol} is None: raise _Error('an enum index out of range')")
            self.emit(indent, f"{target} = {symbol}")
        elif kind == "union":
            i = self.var("i", _LONG)
            self.index(indent, i)
            for index, branch in enumerate(schema):
                self.emit(indent, f"{'if' if index == 0 else 'elif'} {i} == {2 * index}:")
                self.value(branch, indent + 1, target)
            self.emit(indent, "else:")
            self.emit(indent + 1, "raise _Error('a union index out of range')")
        elif kind in ("map", "array"):
            self.block(schema, kind, indent, target)
        elif kind == "record":
            record = self.var("r", "dict")
            self.emit(indent, f"{record} = {{}}")
            for f in schema["fields"]:
                self.value(f["type"], indent, f"{record}[{f['name']!r}]")
            self.emit(indent, f"{target} = {record}")
        else:  # fixed, named references, anything else: fastavro decodes these
            raise Unsupported(str(kind))

    def block(self, schema: dict[str, Any], kind: str, indent: int, target: str) -> None:
        out = self.var("m", "dict" if kind == "map" else "list")
        count, j = self.var("c", _LONG), self.var("j", _LONG)
        self.emit(indent, f"{out} = {{}}" if kind == "map" else f"{out} = []")
        self.emit(indent, "while True:")
        self.long(indent + 1, count)
        self.emit(indent + 1, f"if not {count}: break")
        self.emit(indent + 1, f"if {count} < 0:")  # a negative count is followed by a size
        self.emit(indent + 2, f"{count} = -{count}")
        self.long(indent + 2, "_size")
        # `count < 0`: compiled, negating the lowest long leaves it negative
        self.emit(indent + 1, f"if {count} < 0 or {count} > end - pos: "
                              f"raise _Error('a block longer than the body')")
        self.emit(indent + 1, f"for {j} in range({count}):")
        if kind == "map":
            key = self.var("k")
            self.value("string", indent + 2, key)
            item = self.var("v")
            self.value(schema["values"], indent + 2, item)
            self.emit(indent + 2, f"{out}[{key}] = {item}")
        else:
            item = self.var("v")
            self.value(schema["items"], indent + 2, item)
            self.emit(indent + 2, f"{out}.append({item})")
        self.emit(indent, f"{target} = {out}")


def compile_decoder(schema: dict[str, Any]) -> Decoder | None:
    """A decoder for bodies written with `schema` (JSON, logical types ignored), or None when the
    schema uses a type this generator leaves to fastavro."""
    gen = _Codegen()
    for name, ctype in _LOCALS:
        gen.declare(name, ctype)
    decoder: Decoder | None = gen.function(
        lambda: gen.value(schema, 1, "value"),
        ["def decode(data, pos):", "    end = len(data)"],
        ["    if pos > end: raise _Error('a length outside the body')", "    return value, pos"],
        f"<avro decoder {schema.get('name', '')}>",
        {"_varint": _varint, "_encoded_index": _encoded_index, "_Error": AvroBodyError,
         "_unpack": unpack_from})
    return decoder
