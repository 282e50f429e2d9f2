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
process instead of letting the batch be acknowledged.

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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streams.avro_codec import registry
from streams.batch_sender import BatchSender
from streams.dead_letters import DeadLetterRouter
from streams.due_index import DueIndex
from streams.input_gate import DEAD, IGNORE, DeadLetter, admit
from streams.lead_state import LeadState
from streams.lead_store import WATERMARK_KEY, LeadStore
from streams.metrics import Metrics
from streams.metrics_recorder import record
from streams.pause_fence import PauseFence
from streams.stage_machine import Signal, StageMachine

log = logging.getLogger(__name__)
SWEEP_CHUNK = 2000


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Update:
    partition: int
    state: LeadState
    old_stage: str | None
    signals: list[Signal] = field(default_factory=list)


@dataclass(frozen=True)
class Outputs:
    stage_changes: str
    stages: str
    dlq: str


class Processor:
    def __init__(self, machine: StageMachine, store: LeadStore, outputs: Outputs,
                 metrics: Metrics, sender: BatchSender, fence: PauseFence | None = None
                 ) -> None:
        self.machine = machine
        self.store = store
        self.outputs = outputs
        self.sender = sender
        self.fence = fence or PauseFence(float("inf"))
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

    # --- input ---------------------------------------------------------------------------------

    async def process_batch(self, records: Iterable[Any]) -> None:
        """Records are aiokafka ConsumerRecords (anything with topic, partition, offset, key,
        value), in offset order within each partition."""
        async with self.lock:
            now = wall_ms()
            groups: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
            # (source, activity, outcome) -> events: one counter update per label set and batch
            tally: Counter[tuple[str, str, str]] = Counter()
            for msg in records:
                outcome, payload = admit(msg.key, msg.value, now)
                if outcome == DEAD:
                    self.dead_letters.route(payload, msg.topic, msg.partition, msg.offset)
                elif outcome == IGNORE:
                    tally[(payload["source"], payload["activity"], "ignored")] += 1
                else:
                    groups[(msg.partition, payload["lead_id"])].append(payload)
            updates = []
            for (partition, lead_id), events in groups.items():
                update = self._apply(partition, lead_id, events, now, tally)
                if update is not None:
                    updates.append(update)
            await self.commit(updates)
            events_metric = self.metrics.events
            for labels, count in tally.items():
                events_metric.labels(*labels).inc(count)

    def _apply(self, partition: int, lead_id: str, events: list[dict[str, Any]], now: int,
               tally: Counter[tuple[str, str, str]]) -> Update | None:
        state = self._load(partition, lead_id) or LeadState(lead_id)
        update = Update(partition, state, state.stage)
        machine, lag = self.machine, self.metrics.event_lag
        try:
            for event in events:
                if event["activity"] == "ERASURE_REQUESTED":
                    machine.erase(state, event, update.signals)
                    outcome = "applied"
                else:
                    outcome = machine.apply(state, event, update.signals)
                tally[(event["source"], event["activity"], outcome)] += 1
                lag.observe(max(0.0, (now - event["occurred_at"]) / 1000))
        except Exception as exc:  # a bug must not stop the stream: park the lead's events
            log.exception("processing lead %s failed; its events go to the dead-letter topic",
                          lead_id)
            for event in events:
                value = self.codec.encode("LeadActivity", event)
                dead = DeadLetter("processing_error", type(exc).__name__, str(exc)[:200],
                                  lead_id.encode(), value)
                self.dead_letters.route(dead, "(processing)", partition, -1)
            return None
        return update

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
                    state = self._load(partition, lead_id)
                    if state is None:
                        continue
                    update = Update(partition, state, state.stage)
                    self.machine.advance(state, now_ms, update.signals)
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
                for lead_id, state in self.store.items(partition):
                    self._settle(partition, state)
                    if state.stage is not None:
                        self.stage_counts[partition][state.stage] += 1
                    update = Update(partition, state, state.stage)
                    self.machine.redefine(state, update.signals)
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
        except Exception:
            # Acknowledging the input now could lose changes: end the process, replay on restart.
            log.critical("could not write to Kafka; stopping so the batch is replayed",
                         exc_info=True)
            logging.shutdown()
            os._exit(70)

    async def _commit(self, updates: list[Update]) -> None:
        store, outputs, codec, sender = self.store, self.outputs, self.codec, self.sender
        changelog = store.changelog_topic
        self.fence.check()  # never write for partitions a pause may have cost us
        await sender.prepare([outputs.stage_changes, outputs.stages, outputs.dlq])
        # Batch ids grow with the clock, and past every watermark seen (clock skew between
        # machines must not make a new batch look published).
        batch = max(self._batch + 1, wall_ms(),
                    *(self.confirmed.get(u.partition, 0) + 1 for u in updates))
        self._batch = batch
        marks, self._marks = self._marks, {}
        for partition, value in marks.items():
            sender.add(changelog, WATERMARK_KEY, value, partition=partition)
        values = []
        for u in updates:
            if u.state.outbox:
                u.state.outbox_batch = batch
            value = store.encode(u.state)
            values.append(value)
            sender.add(changelog, u.state.lead_id.encode(), value, partition=u.partition)
        # 1. the states (with their outboxes) are durable before anything is published
        written = await sender.flush()
        store.put_local_many(((u.partition, u.state.lead_id, value)
                              for u, value in zip(updates, values, strict=True)),
                             {p: offset for (topic, p), offset in written.items()
                              if topic == changelog})
        self.fence.check()
        # 2. publish the outboxes (dead letters routed during the batch are already queued)
        published: set[int] = set()
        for u in updates:
            outbox = u.state.outbox
            if not outbox:
                continue
            key = u.state.lead_id.encode()
            for change in outbox:
                sender.add(outputs.stage_changes, key, codec.encode("LeadStageChanged", change))
            last = outbox[-1]
            current = None if last["stage"] is None else codec.encode("LeadStage", {
                "lead_id": last["lead_id"], "stage": last["stage"], "since": last["changed_at"],
                "sequence": last["sequence"], "definitions_version": last["definitions_version"]})
            sender.add(outputs.stages, key, current)
            published.add(u.partition)
        await sender.flush()
        # 3. confirmed: one watermark per partition (locally now, on the changelog next flush)
        mark = str(batch).encode()
        for partition in published:
            self.confirmed[partition] = batch
            store.put_watermark_local(partition, mark)
            self._marks[partition] = mark
        record(self.metrics, (s for u in updates for s in u.signals))
        for u in updates:
            u.state.outbox = []  # published: the in-memory copy is settled
            self._count(u)
            self.due.set(u.partition, u.state.lead_id, u.state.next_review)
        if updates:
            self._set_gauge()

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
