"""`make soak`'s per-minute figures of the worker (bench/soak.py): what it handled, and how its
event-loop thread spent the minute; its verdict; and bench/soak_offline.py's count of the leads
a fetch touches."""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from tests.fakes import partition_of

ROOT = Path(__file__).resolve().parents[3]


@functools.cache
def bench_script(name: str) -> ModuleType:
    """bench/<name>.py, loaded as `make soak` runs it; the import path it extends (bench/ first)
    is put back, and the bench modules it imported are dropped, so that they shadow no module
    of other tests."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    path, modules = list(sys.path), set(sys.modules)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path
        for added in set(sys.modules) - modules:
            if str(getattr(sys.modules[added], "__file__", "")).startswith(str(ROOT / "bench")):
                del sys.modules[added]
    return module


def soak() -> ModuleType:
    return bench_script("soak")


def test_a_minutes_figures_come_from_the_samples_nearest_its_ends() -> None:
    # every 10 s: 25,000 events/s handled, the loop 0.8 s on a core and 0.1 s waiting for one
    # per second, the whole worker 0.95 s, the broker 0.2 s, the load generator 0.3 s
    samples = [(t * 10.0, t * 250_000, t * 8.0, t * 1.0, t * 9.5, t * 2.0, t * 3.0)
               for t in range(13)]
    samples[7] = (70.0, 7 * 250_000 + 100_000, 56.0, 7.0, 66.5, 14.0, 21.0)  # a burst at 70 s
    first = soak().worker_minute(samples, 0, 60)
    assert first == pytest.approx({"events_per_second": 25_000, "on_core": 0.8,
                                   "waiting_for_core": 0.1, "cpu_us_per_event": 32.0,
                                   "other_threads_cores": 0.15, "broker_cores": 0.2,
                                   "load_generator_cores": 0.3})
    # 30 to 70 s ends on the bump: 1,100,000 events in 40 s
    assert soak().worker_minute(samples, 30, 70)["events_per_second"] == pytest.approx(27_500)
    # 60 to 120 s ends on samples past it: the bump is inside and cancels out
    assert soak().worker_minute(samples, 60, 120)["events_per_second"] == pytest.approx(25_000)


def test_a_minute_without_samples_30_s_apart_has_no_figures() -> None:
    samples = [(0.0, 0, 0.0, 0.0, 0.0, 0.0, 0.0), (20.0, 500_000, 16.0, 2.0, 19.0, 4.0, 6.0),
               (200.0, 5_000_000, 160.0, 20.0, 190.0, 40.0, 60.0)]
    figures = soak().worker_minute(samples, 0, 60)
    assert set(figures) == set(soak().WORKER_FIGURES) and set(figures.values()) == {None}


def test_the_thread_time_is_this_threads_own() -> None:
    on_core, waiting = soak().thread_times(os.getpid())
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # busy for 0.2 s of CPU
        pass
    later, _ = soak().thread_times(os.getpid())
    assert 0.15 <= later - on_core <= 2.0 and waiting >= 0.0
    assert soak().thread_times(2**22 + 12_345) == (0.0, 0.0)  # no such process
    assert soak().process_cpu_s(os.getpid()) >= later - 0.05  # the process holds the thread
    assert soak().process_cpu_s(2**22 + 12_345) == 0.0


def test_a_standing_backlog_is_flat_by_the_rule_but_not_kept_up() -> None:
    # the short run of 2026-12-06 at 16,647 events/s: 5.6 s, then 4.8 s
    assert soak().verdict([5_598, 4_805]) == (True, False)


def test_latency_of_batches_in_flight_is_flat_and_kept_up() -> None:
    assert soak().verdict([180, 240, 150, 200]) == (True, True)


def test_a_growing_or_draining_latency_is_not_flat() -> None:
    assert soak().verdict([180, 400, 900, 230]) == (False, True)
    assert soak().verdict([6_800, 21_100, 10_900]) == (False, False)
    assert soak().verdict([900, 600]) == (False, True)  # a first minute's backlog that drains


def test_a_lead_is_touched_once_per_run_of_its_partition() -> None:
    touched = bench_script("soak_offline").leads_touched_per_event
    keys = [b"a", b"a", b"b", b"a"]
    assert touched(keys, 1, 2) == 3 / 4  # runs [a, a] and [b, a]
    assert touched(keys, 1, 4) == 2 / 4
    assert touched(keys, 1, 1) == 1.0


def test_runs_are_of_one_partition_records() -> None:
    offline = bench_script("soak_offline")
    x = b"x"
    y = next(k for k in (b"y%d" % i for i in range(100))
             if partition_of(k, 2) != partition_of(x, 2))
    keys = [x, y, x, y]
    assert offline.leads_touched_per_event(keys, 1, 2) == 1.0  # [x, y], [x, y]
    assert offline.leads_touched_per_event(keys, 2, 2) == 0.5  # [x, x] and [y, y]
