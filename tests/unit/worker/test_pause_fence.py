import pytest

from streams.worker.pause_fence import PauseFence


class Exited(Exception):
    pass


def paused(gap: float) -> None:
    raise Exited(gap)


@pytest.fixture
def clock():
    return [1000.0]


def fence_on(clock: list[float]) -> PauseFence:
    return PauseFence(7.0, on_paused=paused, clock=lambda: clock[0])


def test_steady_ticks_and_a_slow_start_are_fine(clock):
    fence = fence_on(clock)
    clock[0] += 60  # start-up before the first tick does not count
    fence.check()
    for _ in range(10):
        fence.tick()
        clock[0] += 1.0
        fence.check()


def test_a_gap_past_the_threshold_ends_the_process_before_writing(clock):
    fence = fence_on(clock)
    fence.tick()
    clock[0] += 7.5  # frozen: the other worker may own our partitions now
    with pytest.raises(Exited) as caught:
        fence.check()
    assert caught.value.args == (7.5,)
