"""What the generated Avro decoder and encoder share: writing Python source line by line, with
fresh names and the constants it refers to, and compiling it into a function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Unsupported(Exception):
    """A schema type the generators leave to fastavro."""


class SourceWriter:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}
        self.temp = 0

    def var(self, prefix: str) -> str:
        """A name not used before in this function."""
        self.temp += 1
        return f"{prefix}{self.temp}"

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def constant(self, prefix: str, value: Any) -> str:
        """A name the function reads `value` by."""
        name = self.var(prefix)
        self.constants[name] = value
        return name

    def function(self, write_body: Callable[[], None], head: list[str], tail: list[str],
                 filename: str, runtime: dict[str, Any]) -> Any:
        """The function `head` + the lines `write_body` emits + `tail` define, compiled; None
        when the body needs a type the generators leave to fastavro."""
        try:
            write_body()
        except Unsupported:
            return None
        source = "\n".join([*head, *self.lines, *tail, ""])
        namespace: dict[str, Any] = {**runtime, **self.constants}
        exec(compile(source, filename, "exec"), namespace)
        name = head[0].split()[1].split("(")[0]
        return namespace[name]
