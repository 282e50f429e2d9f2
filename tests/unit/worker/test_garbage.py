"""The cycle collector stays out of input batches (worker/garbage.py says why) and is back once
each batch is done, however it ended."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from typing import Any

import pytest

from streams.worker.garbage import YOUNG_EVERY, collection_paused, settle_memory
from streams.worker.pipeline import LeadPipeline
from tests.fakes import MemoryStore, Sender, activity_record, lead_pipeline, message, settled

NOW = int(time.time() * 1000)


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    gc.enable()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    (gc.enable if enabled else gc.disable)()


class WatchingStore(MemoryStore):
    """Notes whether the collector was enabled at each state read and write."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[bool] = []

    def get_raw_many(self, partition: int, lead_ids: list[str]) -> list[bytes | None]:
        self.seen.append(gc.isenabled())
        return super().get_raw_many(partition, lead_ids)

    def put_local_many(self, entries: Any, persisted: dict[int, int]) -> None:
        self.seen.append(gc.isenabled())
        super().put_local_many(entries, persisted)


def pipeline(store: MemoryStore, sender: Sender, fatal: list[BaseException]) -> LeadPipeline:
    return lead_pipeline(store, sender, on_fatal=fatal.append)


def records(leads: int) -> list[Any]:
    return [message(activity_record(f"e{i}", f"L{i}", NOW - 1000), offset=i)
            for i in range(leads)]


def test_the_collector_is_off_while_a_batch_is_handled_and_on_after_it() -> None:
    store, fatal = WatchingStore(), []
    worker = pipeline(store, Sender(), fatal)
    settled(worker, worker.process_batch(records(5)))
    assert store.seen == [False, False]  # its read and its write
    assert gc.isenabled()
    assert fatal == [] and all(store.get(0, f"L{i}") is not None for i in range(5))


def test_the_collector_is_back_after_a_batch_whose_commit_failed() -> None:
    store, fatal = WatchingStore(), []
    worker = pipeline(store, Sender(fail_on_flush=1), fatal)
    with pytest.raises(ConnectionError):  # reported to on_fatal, and raised
        settled(worker, worker.process_batch(records(3)))
    assert fatal and isinstance(fatal[0], ConnectionError)  # the batch did fail
    assert gc.isenabled()


def test_a_caller_that_had_the_collector_off_keeps_it_off() -> None:
    gc.disable()
    with collection_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()
    gc.enable()
    with pytest.raises(RuntimeError), collection_paused():
        raise RuntimeError("a failed block")
    assert gc.isenabled()


def test_settled_memory_collects_young_objects_less_often_and_skips_start_up_objects() -> None:
    before = gc.get_freeze_count()
    settle_memory()
    assert gc.get_threshold()[0] == YOUNG_EVERY
    assert gc.get_freeze_count() > before
