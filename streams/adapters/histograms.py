"""Many observations of a prometheus-client Histogram at once.

`Histogram.observe` walks the buckets and takes the value lock twice per call; the worker observes
every event's lag, so per event that was most of its metrics time. Counting a batch's values per
bucket first and adding each count once gives the same samples. This reads the client's private
fields (`_upper_bounds`, `_buckets`, `_sum`, as of prometheus-client 0.2x), which is why it lives
in the adapters; tests/unit/adapters/test_histograms.py compares it with `observe`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

from prometheus_client import Histogram


def observe_many(histogram: Histogram, values: Iterable[float]) -> None:
    """The same as `histogram.observe(v)` for each value, with one update per bucket touched."""
    bounds: list[float] = histogram._upper_bounds
    counts = [0] * len(bounds)
    total = 0.0
    for value in values:
        counts[bisect_left(bounds, value)] += 1  # the first bucket whose bound is >= value
        total += value
    if not any(counts):
        return
    histogram._sum.inc(total)
    buckets = histogram._buckets
    for i, n in enumerate(counts):
        if n:
            buckets[i].inc(n)
