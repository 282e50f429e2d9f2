"""Text that comes from files, events or a worker, made safe to print with rich: markup is
escaped (`L-[/x]` is a lead id, not a closing tag) and control characters, ESC sequences
included, are shown as visible escapes instead of reaching the terminal."""

from __future__ import annotations

import re

from rich.markup import escape

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(value: object) -> str:
    """The text with control characters written as visible escapes (for plain output)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def shown(value: object) -> str:
    """The text for rich output: printable, with markup escaped."""
    return escape(printable(value))
