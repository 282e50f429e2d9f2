"""The connection probe leaves the caller's event loop alone: run on the worker's main thread
before Faust starts, asyncio.run() there closed and unset the loop Faust's objects were built
on, and workers joining and leaving then published conflicting changes (make faults)."""

from __future__ import annotations

import asyncio

from streams.adapters.kafka_probe import diagnose
from streams.adapters.settings import Settings


def test_diagnosing_leaves_the_threads_event_loop_as_it_was():
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        problem = diagnose(Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}),
                           timeout_s=2)
        assert problem is not None and "no Kafka broker answers at 127.0.0.1:1" in problem
        assert asyncio.get_event_loop() is loop and not loop.is_closed()
    finally:
        asyncio.set_event_loop(None)
        loop.close()
