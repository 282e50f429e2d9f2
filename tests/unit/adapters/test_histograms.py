"""observe_many gives the samples observe gives, value by value (it reads the client's private
fields, so a prometheus-client upgrade that moves them fails here first)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from streams.adapters.histograms import observe_many

BUCKETS = (0.005, 0.05, 0.5, 1.0, 5.0, 60.0)


def samples(histogram: Histogram) -> dict[tuple[str, str], float]:
    return {(s.name, s.labels.get("le", "")): s.value
            for metric in histogram.collect() for s in metric.samples
            if not s.name.endswith("_created")}


@given(st.lists(st.floats(0, 200, allow_nan=False) | st.sampled_from(BUCKETS), max_size=60))
def test_the_same_samples_as_one_observe_per_value(values: list[float]) -> None:
    one = Histogram("lag", "", buckets=BUCKETS, registry=CollectorRegistry())
    many = Histogram("lag", "", buckets=BUCKETS, registry=CollectorRegistry())
    for v in values:
        one.observe(v)
    observe_many(many, values)
    expected, got = samples(one), samples(many)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert abs(got[key] - value) <= 1e-9 * max(1.0, abs(value)), key


def test_a_value_on_a_bound_counts_in_that_bucket() -> None:
    h = Histogram("lag", "", buckets=BUCKETS, registry=CollectorRegistry())
    observe_many(h, [0.5, 0.5, 61.0])
    got = samples(h)
    assert got[("lag_bucket", "0.05")] == 0 and got[("lag_bucket", "0.5")] == 2
    assert got[("lag_bucket", "60.0")] == 2 and got[("lag_bucket", "+Inf")] == 3
    assert got[("lag_count", "")] == 3 and got[("lag_sum", "")] == 62.0
