import pytest

from streams import pause_fence
from streams.pause_fence import EXIT_PAUSED, PauseFence


class Exited(Exception):
    pass


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(pause_fence.time, "monotonic", lambda: now[0])

    def exit_(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(pause_fence.os, "_exit", exit_)
    return now


def test_steady_ticks_and_a_slow_start_are_fine(clock):
    fence = PauseFence(7.0)
    clock[0] += 60  # start-up before the first tick does not count
    fence.check()
    for _ in range(10):
        fence.tick()
        clock[0] += 1.0
        fence.check()


def test_a_gap_past_the_threshold_ends_the_process_before_writing(clock):
    fence = PauseFence(7.0)
    fence.tick()
    clock[0] += 7.5  # frozen: the other worker may own our partitions now
    with pytest.raises(Exited) as caught:
        fence.check()
    assert caught.value.args == (EXIT_PAUSED,)
