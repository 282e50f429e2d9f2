"""Faust's Kafka consumer, handing the input topic to the worker one fetched batch at a time.

Faust delivers every record on its own: a Message, an Event, a queue put, the stream iterator
and, in faust-streaming 0.15, a `wait_first` that creates two tasks per record; that per-record
path costs more than the stage logic itself (bench/README.md). This consumer keeps the rest of
Faust (group membership, rebalances, table recovery, the commit loop and its offsets) and
replaces only the per-record delivery for one topic: each fetch goes to one handler, and the
fetched offsets count as processed when the handler returns. Table changelogs being replayed
(recovery, standbys) get the same treatment: each fetch goes to RocksDB in one write batch, with
Faust's Recovery bookkeeping updated as its own per-record loop does. Records of any other topic
still take Faust's own path.

It also sets the consumer's fetch wait, which Faust fixes at 1,500 ms (BatchInput), has the
input topic's records unpacked by input_records, with less work per record than aiokafka's,
and sizes each batch so that it takes the partitions' fetched records whole where it can
(`whole_partitions`).

It relies on internals of faust-streaming 0.15 (the consumer's offset maps, Recovery's offsets
and end-of-recovery signal, the consumer thread's factory and its `_fetch_records`) and of
aiokafka (the fetch wait read at start, the fetcher's results and how it lets them go);
pyproject pins faust-streaming below 0.16 for that reason.

The guarantees of Faust's path are kept:
- offsets are committed only after the handler returned (at-least-once);
- a batch is never started while a rebalance is under way, and a revocation waits for the
  batch in flight (as Faust's `wait_empty` waits for unacknowledged events) so a partition is
  never handled by two workers at once;
- stopping the worker lets the batch in flight finish instead of cancelling it halfway, and
  waits for what it left in flight (`BatchInput.drain`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from time import monotonic
from typing import Any, cast

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.adapters import input_records

log = logging.getLogger(__name__)

#: Receives the records of one fetch (input_records.InputRecord: topic, partition, offset, key,
#: value, headers), in offset order within each partition.
BatchHandler = Callable[[Sequence[Any]], Awaitable[None]]


async def _nothing_in_flight() -> None:
    return None


@dataclass(frozen=True)
class BatchInput:
    topic: str
    handler: BatchHandler
    #: the consumer's fetch.max.wait.ms (Settings.fetch_max_wait_ms says why it matters)
    fetch_max_wait_ms: int
    #: waits for what a handler that returned left in flight (the worker: its last batch's
    #: changes, sent but not yet acknowledged); revocation and shutdown wait for it
    drain: Callable[[], Awaitable[None]] = _nothing_in_flight


class BatchConsumer(faust_aiokafka.Consumer):
    """Set `app.batch_input` (a BatchInput) before the worker starts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: partition -> the offset to commit (the last handled record + 1)
        self._handled: dict[TP, int] = {}
        self._inflight: asyncio.Future[None] | None = None

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _BatchConsumerThread(self, loop=self.loop, beacon=self.beacon)

    # --- delivery ------------------------------------------------------------------------------

    async def _drain_messages(self, fetcher: Any) -> None:
        batch_input: BatchInput = self.app.batch_input  # type: ignore[attr-defined]
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                records, active = await self._wait_next_records(1.0)
                await asyncio.sleep(0)  # never hold the loop across back-to-back fetches
                if not records or self.should_stop:
                    continue
                if not self.flow_active:
                    # A rebalance began while fetching: these records may belong to another
                    # worker now. Faust seeks back to the committed offsets; so do we, and to
                    # the first record fetched where nothing was ever committed.
                    await self._unread(records)
                    await self.perform_seek()
                    continue
                generation = self.app.consumer_generation_id
                batch: list[Any] = []
                ends: dict[TP, int] = {}
                skipped: dict[TP, list[Any]] = {}
                for tp, tp_records in records.items():
                    if not tp_records:
                        continue
                    if active is not None and tp not in active:
                        skipped[tp] = tp_records  # paused meanwhile: fetch these again later
                        continue
                    if tp.topic == batch_input.topic:
                        batch.extend(tp_records)
                        ends[tp] = tp_records[-1].offset
                    elif not self._replay(tp, tp_records):
                        await self._deliver_one_by_one(tp, tp_records)
                if skipped:
                    await self._unread(skipped)
                if batch:
                    self._inflight = asyncio.ensure_future(
                        self._handle(batch_input.handler, batch, ends, generation))
                    # Shielded: stopping the fetcher must not cut a commit in half.
                    await asyncio.shield(self._inflight)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    async def _unread(self, records: Mapping[TP, list[Any]]) -> None:
        """Put the consumer back before records it fetched but will not handle now. Faust drops
        them and relies on seeking to the committed offset, which does nothing for a partition
        that never had an offset committed: its records would be skipped for good."""
        assigned = self.assignment()
        topic = self.app.batch_input.topic  # type: ignore[attr-defined]
        for tp, tp_records in records.items():
            # Changelog positions belong to Recovery, which seeks them itself; replaying a
            # changelog record twice is harmless anyway.
            if tp_records and tp.topic == topic and tp in assigned:
                log.debug("fetching %s again from %d", tp, tp_records[0].offset)
                try:
                    await self.seek(tp, tp_records[0].offset)
                except Exception:  # revoked meanwhile: its next owner starts from the commit
                    log.info("could not seek %s back; it was revoked", tp)

    async def _handle(self, handler: BatchHandler, batch: list[Any], ends: dict[TP, int],
                      generation: int) -> None:
        await handler(batch)
        if self.app.consumer_generation_id != generation:
            return  # partitions were reassigned meanwhile: their new owner replays
        inbound = self.app.monitor.stream_inbound_time  # read by Faust's livelock warnings
        now = monotonic()
        for tp, offset in ends.items():
            self._read_offset[tp] = offset
            self._handled[tp] = offset + 1
            inbound[tp] = now
        self._n_acked += len(batch)
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()

    async def _deliver_one_by_one(self, tp: TP, tp_records: list[Any]) -> None:
        """Faust's own delivery, as its drain loop does it (a rebalance abandons a delivery
        blocked on a suspended queue)."""
        for record in tp_records:
            await self.wait_first(self.callback(self._to_message(tp, record)),
                                  self.suspend_flow.wait())
            self._read_offset[tp] = record.offset

    def _replay(self, tp: TP, tp_records: list[Any]) -> bool:
        """Apply changelog records of a partition being recovered or kept as a standby, as
        Recovery._slurp_changelogs would one by one (less its per-event on_changelog_event
        callback, which the leads table does not use). False if tp is not being replayed."""
        recovery = cast(Any, self.app.tables).recovery
        if tp in recovery.active_tps:
            offsets, received = recovery.active_offsets, recovery._active_events_received_at
        elif tp in recovery.standby_tps:
            offsets, received = recovery.standby_offsets, recovery._standby_events_received_at
        else:
            return False
        seen = offsets.get(tp)
        fresh = [r for r in tp_records if seen is None or r.offset > seen]
        if fresh:
            recovery.tp_to_table[tp].apply_changelog_batch([_Replayed(tp, r) for r in fresh])
            offsets[tp] = fresh[-1].offset
            received[tp] = monotonic()
        if recovery.in_recovery and not recovery.need_recovery():
            recovery.flush_buffers()
            recovery._set_recovery_ended()
            recovery.signal_recovery_end.set()
        if not recovery.tables.standbys_ready and not recovery.standby_remaining_total():
            recovery.tables.on_standbys_ready()
        return True

    # --- offsets, through Faust's commit loop --------------------------------------------------

    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Iterator[TP]:
        pending = set(super()._filter_tps_with_pending_acks(topics))
        pending.update(tp for tp in self._handled
                       if topics is None or tp in topics or tp.topic in topics)
        return iter(pending)

    def _new_offset(self, tp: TP) -> int | None:
        if tp in self._handled:
            return self._handled[tp]
        return super()._new_offset(tp)

    async def wait_empty(self) -> None:
        """Revocation and shutdown wait for the batch in flight, then commit."""
        await self._batch_done()
        await super().wait_empty()

    async def _batch_done(self) -> None:
        """The batch in flight handled, and what its handler left in flight done."""
        inflight = self._inflight
        if inflight is not None and not inflight.done():
            await asyncio.wait([inflight])
        await self.app.batch_input.drain()  # type: ignore[attr-defined]

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self._handled.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        # Offsets recorded by a batch that finished during the revocation were committed by
        # that revocation; anything left is stale for the new assignment.
        self._handled.clear()
        await super().on_partitions_assigned(assigned, generation_id)


class _BatchConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, with the fetch wait of BatchInput instead of Faust's fixed
    1,500 ms (aiokafka reads it when the consumer starts), the input topic's records
    unpacked by input_records, and batches made of whole partitions' fetches
    (`whole_partitions`)."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        batch_input: BatchInput = self.app.batch_input  # type: ignore[attr-defined]
        consumer._fetch_max_wait_ms = batch_input.fetch_max_wait_ms
        input_records.install([batch_input.topic])
        return consumer

    async def _fetch_records(self, consumer: Any, active_partitions: set[TP],
                             timeout: float | None = None, max_records: int | None = None
                             ) -> Any:
        if max_records is None:
            return await super()._fetch_records(consumer, active_partitions, timeout)
        fetcher = consumer._fetcher
        records = await super()._fetch_records(
            consumer, active_partitions, timeout,
            whole_partitions(fetcher._records, active_partitions, max_records))
        let_go_read(fetcher, records)
        return records


#: A partition's fetched records that alone are up to this many times the batch size are
#: handled whole rather than cut at it (`whole_partitions`).
WHOLE_PARTITION_SLACK = 1.5


def whole_partitions(fetched: Mapping[TP, Any], active: set[TP] | None, max_records: int
                     ) -> int:
    """The size of the next batch, so that it cuts no partition's fetched records in two
    where it need not.

    aiokafka fills a batch of `max_records` partition by partition, in the order their fetches
    came (`fetched`, its fetcher's results), and cuts the last one it takes. A worker that is
    behind gets each partition's records in fetches about as large as a batch, so nearly every
    fetch was cut in two and handled in two batches, each with another partition's. But the
    cost of a batch is mostly per lead it touches (one state read, encode and write for all of
    a lead's events in it), and a lead's events in two batches are touched twice. So the batch
    is made as large as the partitions that fit whole, in aiokafka's order; if the first alone
    is over `max_records`, as large as it, up to WHOLE_PARTITION_SLACK times `max_records`,
    else `max_records`: aiokafka then cuts it as before. What is not the input topic's
    (changelogs being recovered) or a fetch error leaves `max_records` as it is."""
    taken = 0
    for tp, result in fetched.items():
        if active and tp not in active:
            continue  # as aiokafka skips it
        records = getattr(result, "_partition_records", None)
        remaining = getattr(records, "remaining", None)
        count: int | None = remaining() if remaining is not None else None
        if count is None:
            break
        if taken + count > max_records:
            if not taken and count <= max_records * WHOLE_PARTITION_SLACK:
                return count
            break
        taken += count
    return taken or max_records


def let_go_read(fetcher: Any, drained: Mapping[TP, Any]) -> None:
    """Let go of the fetched records of the partitions `drained` that were read to their end.
    aiokafka does so only when a batch asks for more than is left, and a partition is fetched
    again only once it has, so a batch of exactly a partition's records (`whole_partitions`)
    would leave its next fetch to wait for the next batch."""
    results = fetcher._records
    for tp in drained:
        result = results.get(tp)
        remaining = getattr(getattr(result, "_partition_records", None), "remaining", None)
        if remaining is not None and remaining() == 0:  # None: another topic's, left as is
            result.getall()  # the end of its records, as aiokafka reads it: nothing more
            del results[tp]
            fetcher._notify(fetcher._wait_consume_future)  # as aiokafka: fetch it again


class _Replayed:
    """A changelog record shaped as the event Faust's Store.apply_changelog_batch reads."""

    __slots__ = ("message",)

    def __init__(self, tp: TP, record: Any) -> None:
        self.message = _ReplayedMessage(tp, record)


class _ReplayedMessage:
    __slots__ = ("key", "offset", "partition", "tp", "value")

    def __init__(self, tp: TP, record: Any) -> None:
        self.tp, self.partition, self.offset = tp, record.partition, record.offset
        self.key, self.value = record.key, record.value


class BatchTransport(faust_aiokafka.Transport):
    Consumer = BatchConsumer
