"""Hypothesis strategies for records of an Avro schema (JSON): every value its types allow,
a field with a default sometimes left out."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

text = st.text(max_size=30)
longs = st.integers(-2**63, 2**63 - 1)
ints = st.integers(-2**31, 2**31 - 1)


def records(schema: Any) -> st.SearchStrategy[Any]:
    kind = schema if isinstance(schema, str) else (
        "union" if isinstance(schema, list) else schema["type"])
    if isinstance(kind, dict | list):
        return records(kind)
    simple = {"string": text, "long": longs, "int": ints, "boolean": st.booleans(),
              "double": st.floats(allow_nan=False), "null": st.none()}
    if kind in simple:
        return simple[kind]
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "union":
        return st.one_of(*(records(b) for b in schema))
    if kind == "map":
        return st.dictionaries(text, records(schema["values"]), max_size=4)
    if kind == "record":
        required = {f["name"]: records(f["type"]) for f in schema["fields"]
                    if "default" not in f}
        optional = {f["name"]: records(f["type"]) for f in schema["fields"] if "default" in f}
        return st.fixed_dictionaries(required, optional=optional)  # a missing field: its default
    raise AssertionError(f"no strategy for {kind}")
