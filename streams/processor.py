"""The worker's processing pipeline: input batches, time sweeps and post-rebalance scans all end
in `commit`, which is what makes "no stage change is ever lost" hold.

For every lead touched, `commit`:
1. sends the new state (with its outbox of unconfirmed changes) to the table's changelog and waits
   for Kafka's acknowledgement, then writes it to local RocksDB;
2. publishes the outbox (LeadStageChanged, and the current LeadStage or a tombstone) and the
   batch's dead letters, and waits for their acknowledgements;
3. records, once per partition, that outboxes up to this batch are published: a watermark
   written locally now and to the changelog with the next flush. A state whose outbox batch is
   at or below its partition's watermark is confirmed; if a watermark is lost, the same changes
   are published once more (same ids, same content). One watermark per partition replaces a
   second write per changed lead, which halved the changelog a recovery has to replay.
All records go out through one BatchSender: one aiokafka batch per partition, one await.
Input offsets count as processed only after `commit` returns (BatchConsumer records them when
`process_batch` returns; Faust's commit loop commits them). A crash before (1) completes
replays the input; a crash between (1) and (2) leaves an outbox that the next touch of the
lead, or the scan after the rebalance, publishes. A Kafka failure inside `commit` ends the
process (through the injected `on_fatal`) instead of letting the batch be acknowledged.

A failure confined to one lead stays with that lead: an exception while applying its events,
sweeping or scanning it, or building its records sends its events of the batch to the DLQ (with
their original topic, partition and offset) or leaves the lead out of sweeps until its next
event, and is counted and shown by `GET /leads/{id}`; the batch goes on. Records found on a
partition other than their key's are sent on to the right partition instead of being applied
where a second copy of the lead would grow.

Input batches, sweep and scan share one lock, so a lead is never worked on by two of them at
once; input batches are handled one at a time, in offset order (faust-streaming's agent
concurrency above 1 can commit offsets past unprocessed events; its exactly_once mode is not
relied on either).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.avro_codec import registry
from streams.batch_sender import BatchSender
from streams.dead_letters import DeadLetterRouter
from streams.due_index import DueIndex
from streams.input_gate import DEAD, IGNORE, DeadLetter, admit
from streams.lead_state import MAX_STATE_BYTES, OUTBOX_LIMIT, LeadState
from streams.lead_store import WATERMARK_KEY, LeadStore
from streams.metrics import Metrics
from streams.metrics_recorder import record
from streams.pause_fence import PauseFence
from streams.stage_machine import Signal, StageMachine

log = logging.getLogger(__name__)
SWEEP_CHUNK = 2000
EXIT_KAFKA = 70
#: Leads whose last failure is remembered for lookups; past this the oldest are forgotten.
MAX_QUARANTINED = 10_000


def wall_ms() -> int:
    return int(time.time() * 1000)


def exit_process(exc: BaseException) -> None:
    """The worker's answer to a commit that could not complete: acknowledging the input now
    could lose changes, so the process ends and its successor replays the batch."""
    log.critical("stopping so the batch is replayed from the last committed offset: %s: %s",
                 type(exc).__name__, exc, exc_info=exc)
    logging.shutdown()
    os._exit(EXIT_KAFKA)


@dataclass
class Update:
    partition: int
    state: LeadState
    old_stage: str | None
    signals: list[Signal] = field(default_factory=list)
    #: the input records applied (none for sweeps and scans): dead-lettered if the lead fails
    inputs: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Outputs:
    stage_changes: str
    stages: str
    dlq: str


class Processor:
    def __init__(self, machine: StageMachine, store: LeadStore, outputs: Outputs,
                 metrics: Metrics, sender: BatchSender, fence: PauseFence | None = None,
                 on_fatal: Callable[[BaseException], Any] = exit_process) -> None:
        self.machine = machine
        self.store = store
        self.outputs = outputs
        self.sender = sender
        self.fence = fence or PauseFence(float("inf"))
        self.on_fatal = on_fatal
        #: partition -> last batch whose outboxes are published (see LeadStore.watermark)
        self.confirmed: dict[int, int] = {}
        #: watermarks not yet on the changelog: sent with the next flush
        self._marks: dict[int, bytes] = {}
        self._batch = 0
        self.metrics = metrics
        self.lock = asyncio.Lock()
        self.ready = False
        self.partitions: set[int] = set()
        self.stage_counts: dict[int, Counter[str]] = {}
        self.due = DueIndex()
        self.dead_letters = DeadLetterRouter(self._send_dead, outputs.dlq, metrics)
        self.codec = registry()
        #: lead -> why its last evaluation failed (shown by lookups; cleared by a good commit)
        self.quarantined: dict[str, str] = {}

    # --- input ---------------------------------------------------------------------------------

    async def process_batch(self, records: Iterable[Any]) -> None:
        """Records are aiokafka ConsumerRecords (anything with topic, partition, offset, key,
        value, headers), in offset order within each partition."""
        async with self.lock:
            now = wall_ms()
            groups: dict[tuple[int, str], list[tuple[dict[str, Any], Any]]] = defaultdict(list)
            # (source, activity, outcome) -> events: one counter update per label set and batch
            tally: Counter[tuple[str, str, str]] = Counter()
            for msg in records:
                outcome, payload = admit(msg.key, msg.value, now)
                if outcome == DEAD:
                    self.dead_letters.route(payload, msg.topic, msg.partition, msg.offset)
                elif outcome == IGNORE:
                    tally[(payload["source"], payload["activity"], "ignored")] += 1
                else:
                    groups[(msg.partition, payload["lead_id"])].append((payload, msg))
            if groups:
                await self._reroute(groups)
            # A lead whose events would pile up more than OUTBOX_LIMIT unpublished changes is
            # committed and continued in another round, so no state outgrows its bound.
            # The first commit also carries the batch's dead letters and re-routed records.
            pending = groups
            while True:
                updates = []
                rest: dict[tuple[int, str], list[tuple[dict[str, Any], Any]]] = {}
                for (partition, lead_id), items in pending.items():
                    update, left = self._apply(partition, lead_id, items, now, tally)
                    if update is not None:
                        updates.append(update)
                    if left:
                        rest[(partition, lead_id)] = left
                await self.commit(updates)
                if not rest:
                    break
                pending = rest
            events_metric = self.metrics.events
            for labels, count in tally.items():
                events_metric.labels(*labels).inc(count)

    async def _reroute(self, groups: dict[tuple[int, str], list[tuple[dict[str, Any], Any]]]
                       ) -> None:
        """Send records that sit on another partition than their key's to the right one
        (producers with another default partitioner put them there): applied where they
        landed, they would grow a second copy of their lead."""
        sender = self.sender
        await sender.prepare(list({items[0][1].topic for items in groups.values()}))
        misplaced = []
        for (partition, lead_id), items in groups.items():
            first = items[0][1]
            right = sender.partition_for(first.topic, first.key)
            if right != partition:
                misplaced.append((partition, lead_id))
                for _, msg in items:
                    headers = [*(getattr(msg, "headers", None) or ()),
                               ("leadstage.rerouted.from",
                                f"{msg.partition}:{msg.offset}".encode())]
                    sender.add(msg.topic, msg.key, msg.value, headers, partition=right)
                self.metrics.rerouted.inc(len(items))
        for key in misplaced:
            del groups[key]

    def _apply(self, partition: int, lead_id: str, items: list[tuple[dict[str, Any], Any]],
               now: int, tally: Counter[tuple[str, str, str]]
               ) -> tuple[Update | None, list[tuple[dict[str, Any], Any]]]:
        """Fold a lead's events in: (the update, events left for the next round)."""
        machine = self.machine
        applied: list[tuple[str, str, str]] = []
        left: list[tuple[dict[str, Any], Any]] = []
        try:
            state = self._load(partition, lead_id) or LeadState(lead_id)
            update = Update(partition, state, state.stage)
            for i, (event, msg) in enumerate(items):
                if len(state.outbox) >= OUTBOX_LIMIT:
                    left = items[i:]
                    break
                if event["activity"] == "ERASURE_REQUESTED":
                    machine.erase(state, event, update.signals)
                    outcome = "applied"
                else:
                    outcome = machine.apply(state, event, update.signals)
                applied.append((event["source"], event["activity"], outcome))
                update.inputs.append(msg)
        except Exception as exc:  # a bug must not stop the stream: park the lead's events
            self._lead_failed("event", lead_id, exc, [msg for _, msg in items])
            return None, []
        lag = self.metrics.event_lag
        for event, _ in items[:len(applied)]:
            lag.observe(max(0.0, (now - event["occurred_at"]) / 1000))
        for labels in applied:
            tally[labels] += 1
        return update, left

    def _lead_failed(self, where: str, lead_id: str, exc: BaseException,
                     inputs: Sequence[Any] = ()) -> None:
        """One lead could not be handled: count it, remember why, dead-letter its events."""
        log.error("lead %s: %s failed, %s: %s: %s", lead_id, where,
                  "its events go to the dead-letter topic" if inputs else "left out of sweeps "
                  "until its next event", type(exc).__name__, exc, exc_info=exc)
        self.metrics.lead_failures.labels(where).inc()
        quarantined = self.quarantined
        quarantined.pop(lead_id, None)
        quarantined[lead_id] = f"{where} failed: {type(exc).__name__}: {str(exc)[:200]}"
        while len(quarantined) > MAX_QUARANTINED:
            del quarantined[next(iter(quarantined))]
        self.metrics.quarantined.set(len(quarantined))
        for msg in inputs:
            dead = DeadLetter("processing_error", type(exc).__name__, str(exc)[:200], msg.key,
                              msg.value)
            self.dead_letters.route(dead, msg.topic, msg.partition, msg.offset)

    def _load(self, partition: int, lead_id: str) -> LeadState | None:
        state = self.store.get(partition, lead_id)
        if state is not None:
            self._settle(partition, state)
        return state

    def _settle(self, partition: int, state: LeadState) -> None:
        """Drop an outbox the partition's watermark says was published."""
        if state.outbox:
            if partition not in self.confirmed:
                self.confirmed[partition] = self.store.watermark(partition)
            if state.outbox_batch <= self.confirmed[partition]:
                state.outbox = []

    def _send_dead(self, topic: str, key: bytes | None, value: bytes | None,
                   headers: list[tuple[str, bytes]]) -> None:
        self.sender.add(topic, key, value, headers)  # flushed with the batch's outputs

    def _dead_letters_dropped(self, topic: str, partition: int, count: int,
                              exc: BaseException) -> None:
        self.metrics.dead_letters_dropped.inc(count)

    # --- time ----------------------------------------------------------------------------------

    async def sweep(self, now: int | None = None) -> int:
        """Re-evaluate the leads whose review time has come; returns how many."""
        if not self.ready:
            return 0
        total = 0
        while True:
            async with self.lock:
                now_ms = now if now is not None else wall_ms()
                due = self.due.pop_due(now_ms, SWEEP_CHUNK)
                updates = []
                for partition, lead_id in due:
                    if partition not in self.partitions:
                        continue
                    try:
                        state = self._load(partition, lead_id)
                        if state is None:
                            continue
                        update = Update(partition, state, state.stage)
                        self.machine.advance(state, now_ms, update.signals)
                    except Exception as exc:  # the lead stays out of the due index
                        self._lead_failed("sweep", lead_id, exc)
                        continue
                    updates.append(update)
                await self.commit(updates)
            total += len(due)
            if len(due) < SWEEP_CHUNK:
                return total

    # --- rebalances ----------------------------------------------------------------------------

    async def rescan(self, partitions: set[int]) -> None:
        """After recovery: rebuild indexes and counts, publish unconfirmed outboxes, and
        re-evaluate leads staged under older definitions (cause DEFINITIONS)."""
        async with self.lock:
            self.ready = False
            self.partitions = set(partitions)
            self.due.clear()
            self.stage_counts = {p: Counter() for p in partitions}
            self.confirmed = {p: self.store.watermark(p) for p in partitions}
            updates: list[Update] = []
            for partition in sorted(partitions):
                for key, raw in self.store.raw_items(partition):
                    lead_id = key.decode(errors="replace")
                    try:
                        state = self.store.decode(raw)
                        self._settle(partition, state)
                        update = Update(partition, state, state.stage)
                        self.machine.redefine(state, update.signals)
                    except Exception as exc:  # one unreadable lead must not stop the scan
                        self._lead_failed("scan", lead_id, exc)
                        continue
                    if update.old_stage is not None:
                        self.stage_counts[partition][update.old_stage] += 1
                    if state.outbox or update.signals:
                        updates.append(update)
                    else:
                        self.due.set(partition, lead_id, state.next_review)
                    if len(updates) >= SWEEP_CHUNK:
                        await self.commit(updates)
                        updates = []
            await self.commit(updates)
            self._set_gauge()
            self.ready = True

    # --- the commit protocol -------------------------------------------------------------------

    async def commit(self, updates: list[Update]) -> None:
        try:
            await self._commit(updates)
        except Exception as exc:
            self.on_fatal(exc)
            raise

    def _output_records(self, state: LeadState) -> list[tuple[str, bytes, bytes | None]]:
        """The outbox as records: every LeadStageChanged, then the current LeadStage (or a
        tombstone when the lead left the population)."""
        outbox = state.outbox
        if not outbox:
            return []
        codec, outputs = self.codec, self.outputs
        key = state.lead_id.encode()
        out: list[tuple[str, bytes, bytes | None]] = [
            (outputs.stage_changes, key, codec.encode("LeadStageChanged", change))
            for change in outbox]
        last = outbox[-1]
        current = None if last["stage"] is None else codec.encode("LeadStage", {
            "lead_id": last["lead_id"], "stage": last["stage"], "since": last["changed_at"],
            "sequence": last["sequence"], "definitions_version": last["definitions_version"]})
        out.append((outputs.stages, key, current))
        return out

    async def _commit(self, updates: list[Update]) -> None:
        store, outputs, sender = self.store, self.outputs, self.sender
        changelog = store.changelog_topic
        tolerate, dropped = (outputs.dlq,), self._dead_letters_dropped
        self.fence.check()  # never write for partitions a pause may have cost us
        await sender.prepare([outputs.stage_changes, outputs.stages, outputs.dlq])
        # Batch ids grow with the clock, and past every watermark seen (clock skew between
        # machines must not make a new batch look published).
        batch = max(self._batch + 1, wall_ms(),
                    *(self.confirmed.get(u.partition, 0) + 1 for u in updates))
        self._batch = batch
        # 0. every lead's records are built first: a lead whose records cannot be built (or
        #    whose state would be too large) is left out, with its events dead-lettered
        built = []
        for u in updates:
            try:
                records = self._output_records(u.state)
                if u.state.outbox:
                    u.state.outbox_batch = batch
                value = store.encode(u.state)
                if len(value) > MAX_STATE_BYTES:
                    raise ValueError(f"its state would be {len(value)} bytes, over the "
                                     f"{MAX_STATE_BYTES}-byte bound")
            except Exception as exc:
                self._lead_failed("encode", u.state.lead_id, exc, u.inputs)
                continue
            built.append((u, value, records))
        marks, self._marks = self._marks, {}
        for partition, mark in marks.items():
            sender.add(changelog, WATERMARK_KEY, mark, partition=partition)
        for u, value, _ in built:
            sender.add(changelog, u.state.lead_id.encode(), value, partition=u.partition)
        # 1. the states (with their outboxes) are durable before anything is published
        written = await sender.flush(tolerate, dropped)
        store.put_local_many(((u.partition, u.state.lead_id, value) for u, value, _ in built),
                             {p: offset for (topic, p), offset in written.items()
                              if topic == changelog})
        self.fence.check()
        # 2. publish the outboxes (dead letters routed during the batch went with step 1)
        published: set[int] = set()
        for u, _, records in built:
            if records:
                for topic, key, value in records:
                    sender.add(topic, key, value)
                published.add(u.partition)
        await sender.flush(tolerate, dropped)
        # 3. confirmed: one watermark per partition (locally now, on the changelog next flush)
        mark = str(batch).encode()
        for partition in published:
            self.confirmed[partition] = batch
            store.put_watermark_local(partition, mark)
            self._marks[partition] = mark
        quarantined = self.quarantined
        for u, _, _ in built:
            u.state.outbox = []  # published: the in-memory copy is settled
            self._count(u)
            self.due.set(u.partition, u.state.lead_id, u.state.next_review)
            if quarantined:
                quarantined.pop(u.state.lead_id, None)
        if built:
            self._record_metrics(built)

    def _record_metrics(self, built: list[tuple[Update, bytes, Any]]) -> None:
        """After publishing: a metrics failure is logged and counted, never fatal."""
        try:
            record(self.metrics, (s for u, _, _ in built for s in u.signals))
            self._set_gauge()
            self.metrics.quarantined.set(len(self.quarantined))
        except Exception as exc:
            log.exception("recording metrics failed: %s", exc)
            self.metrics.lead_failures.labels("metrics").inc()

    def _count(self, u: Update) -> None:
        counts = self.stage_counts.setdefault(u.partition, Counter())
        if u.old_stage is not None:
            counts[u.old_stage] -= 1
        if u.state.stage is not None:
            counts[u.state.stage] += 1

    def _set_gauge(self) -> None:
        totals: Counter[str] = Counter()
        for p in self.partitions:
            totals.update(self.stage_counts.get(p, Counter()))
        for stage in self.machine.d.stage_names:
            self.metrics.leads.labels(stage).set(totals.get(stage, 0))
