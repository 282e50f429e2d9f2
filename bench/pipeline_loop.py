"""The worker's pipeline without Kafka or Faust: the `make bench` events, in fetches of 20,000
records, through `LeadPipeline.process_batch` over the in-memory store and sender of the tests
(`tests/fakes.py`): parts, the input gate, re-routing checks, state reads, the stage machine,
records built and committed. Between `bench/core_path.py` (the core alone) and the worker (with
a broker's noise): a lever of the pipeline shows here first.

    .venv/bin/python bench/pipeline_loop.py     # BENCH_EVENTS / BENCH_LEADS as for make bench
    .venv/bin/python -m cProfile -s tottime bench/pipeline_loop.py | head -40

Prints CPU µs per event; measures and reports, asserts nothing.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from run import EVENTS, LEADS, PARTITIONS, records  # noqa: E402

from streams.adapters.murmur2 import murmur2  # noqa: E402
from tests.fakes import Message, Sender, lead_pipeline, partition_of  # noqa: E402

FETCH_RECORDS = 20_000  # the worker's default fetch (LEADSTAGE_MAX_POLL_RECORDS)


@dataclass
class QuietSender(Sender):
    """Takes records and acknowledges every flush at once, keeping none (the fakes' sender
    keeps every record for the tests to read); hashes keys as the worker's BatchSender does."""

    def partition_for(self, topic: str, key: bytes) -> int:
        return (murmur2(key) & 0x7FFFFFFF) % self.partitions

    def add(self, topic: str, key: bytes | None, value: bytes | None,
            headers: Any = None, partition: int | None = None) -> None:
        pass

    async def flush(self, tolerate: Any = (), dropped: Any = None) -> dict[tuple[str, int], int]:
        return {}

    async def send(self, tolerate: Any = (), dropped: Any = None
                   ) -> asyncio.Future[dict[tuple[str, int], int]]:
        acknowledged = asyncio.get_running_loop().create_future()
        acknowledged.set_result(await self.flush())
        return acknowledged


async def run(messages: list[Message]) -> None:
    pipeline = lead_pipeline(sender=QuietSender(partitions=PARTITIONS))
    for start in range(0, len(messages), FETCH_RECORDS):
        await pipeline.process_batch(messages[start:start + FETCH_RECORDS])
    await pipeline.drain()


def as_messages(recs: list[tuple[bytes, bytes]], partitions: int = PARTITIONS) -> list[Message]:
    """(key, value) records as consumed: each on its key's partition, offsets in order."""
    return [Message(key, value, partition=partition_of(key, partitions), offset=i)
            for i, (key, value) in enumerate(recs)]


def cpu_us_per_event(events: int = EVENTS, leads: int = LEADS) -> float:
    """CPU µs per event of `events` events of `leads` leads through the pipeline."""
    messages = as_messages(records(events, leads))
    started = time.process_time()
    asyncio.run(run(messages))
    return (time.process_time() - started) / len(messages) * 1e6


def main() -> int:
    print(f"{EVENTS:,} events, {LEADS:,} leads: {cpu_us_per_event():.1f} µs of CPU per event "
          "through LeadPipeline.process_batch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
