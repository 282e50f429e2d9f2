"""The one place the worker reads the wall clock (epoch milliseconds)."""

from __future__ import annotations

import time


def wall_ms() -> int:
    return int(time.time() * 1000)
