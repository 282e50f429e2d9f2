"""The commit protocol: what makes "no stage change is ever lost" hold.

Input batches, time sweeps and post-rebalance scans all end here. For the leads they touched:

- Step 0, build: every lead's records (its encoded state, its LeadStageChanged records and
  current LeadStage) are built before anything is written, as soon as the lead has been worked
  on (`build`), so its decoded state is let go then: a part's thousands of states are never held
  at once, and the memory one frees is the next one's, still in the CPU's cache (bench/README.md
  says what that saves). A lead whose records cannot be built, or whose state would outgrow
  MAX_STATE_BYTES, raises there and is left out by the caller.
- Step 1, states: each state (with its outbox of unconfirmed changes) goes to the table's
  changelog, with the batch's dead letters and re-routed input; once Kafka has acknowledged,
  the states go to local RocksDB with the changelog offset they reach (in one write batch).
- Step 2, publish: the outboxes go to the output topics. `commit` returns once their requests
  are written; the acknowledgements are waited for meanwhile (`drain`), while the caller works
  on its next batch: at a steady rate, when cycles run back to back, that wait was a part of
  every cycle (bench/README.md, "Step 2 acknowledged in the background").
- Step 3, confirm: once step 2 is acknowledged, one watermark per partition says that outboxes
  up to this batch are published: written locally then and to the changelog with the next step
  1. A state whose outbox batch is at or below its partition's watermark is confirmed; if a
  watermark is lost, the same changes are published once more (same ids, same content).

The next batch's step 1 waits for the last batch's step 3. So no later state is durable before
the changes it follows are (a state read meanwhile counts the batch in flight as published,
`settle`, and writing it without that outbox is safe only then), and one batch's records are
never overtaken by the next one's on an output topic, even when the sender retries.

All records go out through one BatchSender: one aiokafka batch per partition, one request per
broker. Input offsets count as processed once the batch's commit returns (BatchConsumer records
them when the handler returns; Faust's commit loop commits them): its states are durable then.
A crash before step 1 completes replays the input; a crash between steps 1 and 3 leaves an
outbox that the next touch of the lead, or the scan after the rebalance, publishes. A Kafka
write the protocol needs that fails (or any other failure of a step) goes to the injected
`on_fatal`, which ends the process in the worker, as soon as it is known: acknowledging more
input then could lose changes. A revocation, a shutdown and a rescan wait for step 2 (`drain`),
so a partition's next owner never publishes before this worker's last changes are written. The
pause fence is checked before steps 1 and 2, so a worker that was frozen past its session
never writes.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from streams.adapters.lead_store import WATERMARK_KEY
from streams.core.clock import wall_ms
from streams.core.lead_state import MAX_STATE_BYTES, LeadState
from streams.core.signals import Signal
from streams.wire.avro import AvroCodec, avro_codec
from streams.wire.outputs import encode_outbox
from streams.worker.pause_fence import PauseFence

log = logging.getLogger(__name__)
EXIT_KAFKA = 70


@dataclass(frozen=True)
class OutputTopics:
    """The topics a commit writes to, besides the table's changelog."""

    stage_changes: str
    stages: str
    dlq: str


# LeadUpdate and LeadRecords are msgspec structs, not dataclasses: one of each is made for every
# lead an input batch touches, and a dataclass's generated __init__ runs interpreted. Never part
# of a reference cycle, so not tracked by the collector.
class LeadUpdate(msgspec.Struct, gc=False):
    """A lead's state after a batch, sweep or scan worked on it."""

    partition: int
    state: LeadState
    old_stage: str | None
    signals: list[Signal] = []
    #: the input records applied (none for sweeps and scans): dead-lettered if the lead fails
    inputs: list[Any] = []


class LeadRecords(msgspec.Struct, gc=False):
    """A lead's records for the open batch (step 0), and what the commit and its caller still
    need to know of the lead once its decoded state is let go."""

    partition: int
    lead_id: str
    key: bytes
    stage: str | None
    old_stage: str | None
    next_review: int | None
    signals: list[Signal]
    inputs: list[Any]
    #: the encoded state, with its outbox
    value: bytes
    #: the outbox as LeadStageChanged records, and the lead's LeadStage (None: no outbox)
    changes: list[bytes]
    current: bytes | None


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

    async def send(self, tolerate: Any = (), dropped: Any = None
                   ) -> asyncio.Future[dict[tuple[str, int], int]]: ...


def exit_process(exc: BaseException) -> None:
    """The worker's `on_fatal`: acknowledging the input now could lose changes, so the process
    ends and its successor replays the batch from the last committed offset."""
    log.critical("stopping so the batch is replayed from the last committed offset: %s: %s",
                 type(exc).__name__, exc, exc_info=exc)
    logging.shutdown()
    os._exit(EXIT_KAFKA)


class CommitProtocol:
    def __init__(self, store: LeadStore, sender: Sender, outputs: OutputTopics,
                 fence: PauseFence | None = None,
                 on_fatal: Callable[[BaseException], Any] = exit_process,
                 on_dead_letters_dropped: Callable[[int], Any] = lambda count: None,
                 codec: AvroCodec | None = None) -> None:
        self.store = store
        self.sender = sender
        self.outputs = outputs
        self.fence = fence or PauseFence(float("inf"))
        self.on_fatal = on_fatal
        self.on_dead_letters_dropped = on_dead_letters_dropped
        self.codec = codec or avro_codec()
        #: partition -> its watermark: the last batch whose outboxes are published
        self.watermarks: dict[int, int] = {}
        #: watermarks not yet on the changelog: they go with the next step 1
        self._unsent_watermarks: dict[int, bytes] = {}
        self._last_batch = 0
        #: the batch that records are being built for (0: none open)
        self._open_batch = 0
        #: step 2 of the last batch, until it is acknowledged and step 3 is done
        self._publishing: asyncio.Future[None] | None = None
        #: that batch (0: none in flight)
        self._publishing_batch = 0
        #: why a step 2 failed: every later commit raises it, as on_fatal was told
        self._failure: BaseException | None = None

    def reset(self, partitions: Iterable[int]) -> None:
        """After a rebalance (and `drain`): the watermarks of the partitions now held, from the
        store."""
        if self._publishing_batch:
            raise RuntimeError("reset while a batch is being published: drain first")
        self.watermarks = {p: self.store.watermark(p) for p in partitions}
        self._open_batch = 0

    def settle(self, partition: int, state: LeadState) -> None:
        """Drop an outbox the partition's watermark says was published, or that the batch in
        flight publishes: the next step 1, which would write the state without it, waits for
        that batch's acknowledgements, and ends the process instead if they fail."""
        if state.outbox and (state.outbox_batch <= self._watermark(partition)
                             or state.outbox_batch == self._publishing_batch):
            state.published()

    def _watermark(self, partition: int) -> int:
        watermark = self.watermarks.get(partition)
        if watermark is None:
            watermark = self.watermarks[partition] = self.store.watermark(partition)
        return watermark

    def open(self, partitions: Iterable[int] = ()) -> int:
        """The batch the next records are built for, opened if none is: its id grows with the
        clock and past every watermark known (clock skew between machines must not make a new
        batch look published), those of `partitions` read first."""
        if not self._open_batch:
            for partition in partitions:
                self._watermark(partition)
            self._open_batch = self._last_batch = max(
                self._last_batch + 1, wall_ms(), *(w + 1 for w in self.watermarks.values()))
        return self._open_batch

    def build(self, u: LeadUpdate) -> LeadRecords:
        """Step 0 for one lead: its records for the open batch. Raises if they cannot be built or
        the state would outgrow MAX_STATE_BYTES; the caller leaves the lead out."""
        batch = self.open((u.partition,))
        state = u.state
        if state.outbox:
            if self._watermark(u.partition) >= batch:  # open() was not told of the partition
                raise RuntimeError(f"batch {batch} is not past partition {u.partition}'s "
                                   "watermark")
            changes, current = encode_outbox(state.unpublished(), self.codec)
            state.outbox_batch = batch
        else:
            changes, current = [], None
        value = self.store.encode(state)
        if len(value) > MAX_STATE_BYTES:
            raise ValueError(f"its state would be {len(value)} bytes, over the "
                             f"{MAX_STATE_BYTES}-byte bound")
        lead_id = state.lead_id
        return LeadRecords(u.partition, lead_id, lead_id.encode(), state.stage, u.old_stage,
                           state.next_review, u.signals, u.inputs, value, changes, current)

    async def commit(self, built: list[LeadRecords]) -> None:
        """Make the open batch's records durable (step 1) and send its changes (step 2), and
        close it; steps 2 and 3 end in the background (`drain`). A failure of the protocol
        itself goes to `on_fatal`."""
        try:
            await self._commit(built)
        except Exception as exc:
            if exc is not self._failure:  # a step 2's failure went to on_fatal when it came
                self.on_fatal(exc)
            raise
        finally:
            self._open_batch = 0

    async def drain(self) -> None:
        """Wait until the last batch's changes are acknowledged and confirmed (step 3); raises
        what made its step 2 fail."""
        publishing = self._publishing
        if publishing is not None:
            # not cancelled with the caller: a commit half confirmed would publish twice
            await asyncio.wait((publishing,))
            if self._publishing is publishing:
                self._publishing = None
        if self._failure is not None:
            raise self._failure

    async def _confirm(self, acknowledged: asyncio.Future[Any], batch: int,
                       published: set[int]) -> None:
        """Steps 2 and 3 of `batch` once its requests are written: the acknowledgements, then
        one watermark per partition (locally now, on the changelog with the next step 1)."""
        try:
            await acknowledged
        except Exception as exc:
            self._publishing_batch = 0
            self._failure = exc
            try:
                self.on_fatal(exc)  # the worker ends here, without waiting for a next commit
            except Exception as raised:  # an on_fatal that raises (tests): commits raise it
                self._failure = raised
            return
        watermark = str(batch).encode()
        store = self.store
        for partition in published:
            self.watermarks[partition] = batch
            store.put_watermark_local(partition, watermark)
            self._unsent_watermarks[partition] = watermark
        self._publishing_batch = 0  # no later batch is sent before this one is drained

    def _dropped(self, topic: str, partition: int, count: int, exc: BaseException) -> None:
        self.on_dead_letters_dropped(count)

    async def _commit(self, built: list[LeadRecords]) -> None:
        store, outputs, sender = self.store, self.outputs, self.sender
        changelog = store.changelog_topic
        tolerate = (outputs.dlq,)  # a refused dead letter is skipped, not fatal
        batch = self.open()
        self.fence.check()
        await sender.prepare([outputs.stage_changes, outputs.stages, outputs.dlq])
        await self.drain()  # the last batch's step 3 (its watermarks go with this step 1)

        # Step 1: the states (with their outboxes) are durable before anything is published.
        unsent, self._unsent_watermarks = self._unsent_watermarks, {}
        for partition, watermark in unsent.items():
            sender.add(changelog, WATERMARK_KEY, watermark, None, partition)
        for b in built:
            # positional (headers None): the sender would match a keyword by name, per state
            sender.add(changelog, b.key, b.value, None, b.partition)
        written = await sender.flush(tolerate, self._dropped)
        store.put_local_many(((b.partition, b.lead_id, b.value) for b in built),
                             {p: offset for (topic, p), offset in written.items()
                              if topic == changelog})
        self.fence.check()

        # Step 2: publish the outboxes; acknowledged, and step 3 done, in the background.
        published: set[int] = set()
        for b in built:
            if b.changes:
                for change in b.changes:
                    sender.add(outputs.stage_changes, b.key, change)
                sender.add(outputs.stages, b.key, b.current)
                published.add(b.partition)
        if published:
            acknowledged = await sender.send(tolerate, self._dropped)
            self._publishing_batch = batch
            self._publishing = asyncio.ensure_future(
                self._confirm(acknowledged, batch, published))
