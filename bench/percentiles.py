"""The percentile every benchmark reports, computed one way so their figures compare."""

from __future__ import annotations


def percentile(sorted_values: list[float], share: float) -> float:
    """The value of rank int(n * share), counted from 1 (the first for tiny n)."""
    return sorted_values[max(0, int(len(sorted_values) * share) - 1)]
