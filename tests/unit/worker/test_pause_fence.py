import asyncio
from collections.abc import Iterator

import pytest

from streams.core.lead_state import LeadState, dumps
from streams.worker.pause_fence import PauseFence
from streams.worker.pipeline import SCAN_YIELD_EVERY
from tests.fakes import MemoryStore, lead_pipeline


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


class SlowScanStore(MemoryStore):
    """Every lead a rescan reads costs a millisecond of the fake clock, as decoding and
    indexing a lead's state costs real time."""

    def __init__(self, clock: list[float]) -> None:
        super().__init__()
        self.clock = clock

    def raw_items(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        for item in super().raw_items(partition):
            self.clock[0] += 0.001
            yield item


def test_a_rescan_of_many_leads_does_not_look_like_a_pause(clock):
    # 10,000 leads scanned after a rebalance: 10 s of the clock, past the fence's 7 s. The
    # worker's ticker runs on the event loop once a second; the scan must let it.
    store = SlowScanStore(clock)
    for i in range(10 * SCAN_YIELD_EVERY):
        state = LeadState(f"L{i}", stage="cold", since=1, sequence=1, definitions_version=1,
                          evaluated_at=1)
        store.dbs[0][state.lead_id] = dumps(state)
    fence = fence_on(clock)
    pipeline = lead_pipeline(store, fence=fence)

    async def scan_with_the_ticker() -> None:
        scan = asyncio.ensure_future(pipeline.rescan({0}))
        last = clock[0]
        fence.tick()
        while not scan.done():
            if clock[0] - last >= 1.0:  # a one-second timer, on the fake clock
                fence.tick()
                last = clock[0]
            await asyncio.sleep(0)
        await scan

    asyncio.run(scan_with_the_ticker())  # the fence would raise Exited
    assert pipeline.ready and pipeline.stage_counts[0]["cold"] == 10 * SCAN_YIELD_EVERY
