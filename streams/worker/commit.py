"""The commit protocol: what makes "no stage change is ever lost" hold.

Input batches, time sweeps and post-rebalance scans all end here. For the leads they touched:

- Step 0, build: every lead's records (its encoded state, its LeadStageChanged records and
  current LeadStage) are built before anything is written. A lead whose records cannot be built,
  or whose state would outgrow MAX_STATE_BYTES, is left out and handed to `on_lead_failed`.
- Step 1, states: each state (with its outbox of unconfirmed changes) goes to the table's
  changelog, with the batch's dead letters and re-routed input; once Kafka has acknowledged,
  the states go to local RocksDB with the changelog offset they reach (in one write batch).
- Step 2, publish: the outboxes go to the output topics; wait for the acknowledgements.
- Step 3, confirm: one watermark per partition says that outboxes up to this batch are
  published: written locally now and to the changelog with the next step 1. A state whose
  outbox batch is at or below its partition's watermark is confirmed; if a watermark is lost,
  the same changes are published once more (same ids, same content).

All records go out through one BatchSender: one aiokafka batch per partition, one await. Input
offsets count as processed only after the batch's commit returns (BatchConsumer records them when
the handler returns; Faust's commit loop commits them). A crash before step 1 completes replays
the input; a crash between steps 1 and 2 leaves an outbox that the next touch of the lead, or
the scan after the rebalance, publishes. A Kafka write the protocol needs that fails (or any
other failure of a step) goes to the injected `on_fatal`, which ends the process in the worker:
acknowledging the input then could lose changes. The pause fence is checked before steps 1 and
2, so a worker that was frozen past its session never writes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from streams.adapters.lead_store import WATERMARK_KEY
from streams.core.clock import wall_ms
from streams.core.lead_state import MAX_STATE_BYTES, LeadState
from streams.core.signals import Signal
from streams.wire.avro import Registry, registry
from streams.wire.outputs import encode_outbox
from streams.worker.pause_fence import PauseFence

log = logging.getLogger(__name__)
EXIT_KAFKA = 70


@dataclass(frozen=True)
class Outputs:
    """The topics a commit writes to, besides the table's changelog."""

    stage_changes: str
    stages: str
    dlq: str


@dataclass
class Update:
    """A lead's state after a batch, sweep or scan worked on it."""

    partition: int
    state: LeadState
    old_stage: str | None
    signals: list[Signal] = field(default_factory=list)
    #: the input records applied (none for sweeps and scans): dead-lettered if the lead fails
    inputs: list[Any] = field(default_factory=list)


class LeadStore(Protocol):
    """What the protocol needs of the lead table (adapters.lead_store.LeadStore)."""

    @property
    def changelog_topic(self) -> str: ...

    def encode(self, state: LeadState) -> bytes: ...

    def watermark(self, partition: int) -> int: ...

    def put_local_many(self, entries: Iterable[tuple[int, str, bytes]],
                       persisted: dict[int, int]) -> None: ...

    def put_watermark_local(self, partition: int, value: bytes) -> None: ...


class Sender(Protocol):
    """What the protocol needs of adapters.batch_sender.BatchSender."""

    async def prepare(self, topics: list[str]) -> None: ...

    def add(self, topic: str, key: bytes | None, value: bytes | None,
            headers: list[tuple[str, bytes]] | None = None,
            partition: int | None = None) -> None: ...

    async def flush(self, tolerate: Any = (), dropped: Any = None
                    ) -> dict[tuple[str, int], int]: ...


def exit_process(exc: BaseException) -> None:
    """The worker's `on_fatal`: acknowledging the input now could lose changes, so the process
    ends and its successor replays the batch from the last committed offset."""
    log.critical("stopping so the batch is replayed from the last committed offset: %s: %s",
                 type(exc).__name__, exc, exc_info=exc)
    logging.shutdown()
    os._exit(EXIT_KAFKA)


class CommitProtocol:
    def __init__(self, store: LeadStore, sender: Sender, outputs: Outputs,
                 fence: PauseFence | None = None,
                 on_fatal: Callable[[BaseException], Any] = exit_process,
                 on_dead_letters_dropped: Callable[[int], Any] = lambda count: None,
                 codec: Registry | None = None) -> None:
        self.store = store
        self.sender = sender
        self.outputs = outputs
        self.fence = fence or PauseFence(float("inf"))
        self.on_fatal = on_fatal
        self.on_dead_letters_dropped = on_dead_letters_dropped
        self.codec = codec or registry()
        #: partition -> the last batch whose outboxes are published (the watermark)
        self.confirmed: dict[int, int] = {}
        #: watermarks not yet on the changelog: they go with the next step 1
        self._pending_marks: dict[int, bytes] = {}
        self._last_batch = 0

    def reset(self, partitions: Iterable[int]) -> None:
        """After a rebalance: the watermarks of the partitions now held, from the store."""
        self.confirmed = {p: self.store.watermark(p) for p in partitions}

    def settle(self, partition: int, state: LeadState) -> None:
        """Drop an outbox the partition's watermark says was published."""
        if state.outbox:
            if partition not in self.confirmed:
                self.confirmed[partition] = self.store.watermark(partition)
            if state.outbox_batch <= self.confirmed[partition]:
                state.outbox = []

    async def commit(self, updates: list[Update],
                     on_lead_failed: Callable[[Update, BaseException], Any]) -> list[Update]:
        """Make `updates` durable and published; returns those committed (the others went to
        `on_lead_failed` in step 0). A failure of the protocol itself goes to `on_fatal`."""
        try:
            return await self._commit(updates, on_lead_failed)
        except Exception as exc:
            self.on_fatal(exc)
            raise

    def _dropped(self, topic: str, partition: int, count: int, exc: BaseException) -> None:
        self.on_dead_letters_dropped(count)

    async def _commit(self, updates: list[Update],
                      on_lead_failed: Callable[[Update, BaseException], Any]) -> list[Update]:
        store, outputs, sender = self.store, self.outputs, self.sender
        changelog = store.changelog_topic
        tolerate = (outputs.dlq,)  # a refused dead letter is skipped, not fatal
        self.fence.check()
        await sender.prepare([outputs.stage_changes, outputs.stages, outputs.dlq])
        # Batch ids grow with the clock, and past every watermark seen (clock skew between
        # machines must not make a new batch look published).
        batch = max(self._last_batch + 1, wall_ms(),
                    *(self.confirmed.get(u.partition, 0) + 1 for u in updates))
        self._last_batch = batch

        # Step 0: build every lead's records; a lead that fails here is left out.
        built: list[tuple[Update, bytes, list[bytes], bytes | None]] = []
        for u in updates:
            try:
                changes, current = encode_outbox(u.state.outbox, self.codec) \
                    if u.state.outbox else ([], None)
                if u.state.outbox:
                    u.state.outbox_batch = batch
                value = store.encode(u.state)
                if len(value) > MAX_STATE_BYTES:
                    raise ValueError(f"its state would be {len(value)} bytes, over the "
                                     f"{MAX_STATE_BYTES}-byte bound")
            except Exception as exc:
                on_lead_failed(u, exc)
                continue
            built.append((u, value, changes, current))

        # Step 1: the states (with their outboxes) are durable before anything is published.
        marks, self._pending_marks = self._pending_marks, {}
        for partition, mark in marks.items():
            sender.add(changelog, WATERMARK_KEY, mark, partition=partition)
        for u, value, _, _ in built:
            sender.add(changelog, u.state.lead_id.encode(), value, partition=u.partition)
        written = await sender.flush(tolerate, self._dropped)
        store.put_local_many(((u.partition, u.state.lead_id, value) for u, value, _, _ in built),
                             {p: offset for (topic, p), offset in written.items()
                              if topic == changelog})
        self.fence.check()

        # Step 2: publish the outboxes.
        published: set[int] = set()
        for u, _, changes, current in built:
            if changes:
                key = u.state.lead_id.encode()
                for change in changes:
                    sender.add(outputs.stage_changes, key, change)
                sender.add(outputs.stages, key, current)
                published.add(u.partition)
        await sender.flush(tolerate, self._dropped)

        # Step 3: confirm, one watermark per partition (locally now, on the changelog next).
        mark = str(batch).encode()
        for partition in published:
            self.confirmed[partition] = batch
            store.put_watermark_local(partition, mark)
            self._pending_marks[partition] = mark
        committed = []
        for u, _, _, _ in built:
            u.state.outbox = []  # published: the in-memory copy is settled
            committed.append(u)
        return committed
