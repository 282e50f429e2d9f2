"""The worker's pipeline: input batches, time sweeps and post-rebalance scans of the leads of this
worker's partitions. Each ends in the commit protocol (worker/commit.py).

An input batch (one fetch), part by part of whole partitions: every record passes the input gate
(valid, ignored or dead-lettered); records found on a partition other than their key's are sent
on to the right partition instead of being applied where a second copy of the lead would grow;
each lead's events are folded into its state by the stage machine and its records built at once
(commit.py, step 0), so its decoded state goes before the next lead's is read; then the part is
committed. The fetch's offsets count as processed once every part is committed: its states
durable, its changes sent (commit.py says why their acknowledgements need not be waited for). A
sweep re-evaluates the leads whose review time has come (DueIndex); a scan after each rebalance
rebuilds the index and counts, publishes unconfirmed outboxes and re-evaluates leads staged
under older definitions.

A failure confined to one lead stays with that lead: an exception while applying its events,
sweeping or scanning it, or building its records sends its events of the batch to the DLQ (with
their original topic, partition and offset) or leaves the lead out of sweeps until its next
event, and is counted and shown by `GET /leads/{id}`; the batch goes on.

Input batches, sweep and scan share one lock, so a lead is never worked on by two of them at
once; input batches are handled one at a time, in offset order (faust-streaming's agent
concurrency above 1 can commit offsets past unprocessed events; its exactly_once mode is not
relied on either).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from streams.adapters.histograms import observe_many
from streams.core.clock import wall_ms
from streams.core.due_index import DueIndex
from streams.core.lead_state import OUTBOX_LIMIT, LeadState
from streams.core.stage_machine import StageMachine
from streams.wire.gate import DEAD, IGNORE, DeadLetter, admit
from streams.wire.reasons import Reason
from streams.worker.commit import (
    CommitProtocol,
    LeadRecords,
    LeadStore,
    LeadUpdate,
    OutputTopics,
    Sender,
    exit_process,
)
from streams.worker.dead_letters import DeadLetterRouter
from streams.worker.garbage import collection_paused
from streams.worker.metrics import Metrics
from streams.worker.metrics_recorder import record_signals
from streams.worker.pause_fence import PauseFence

log = logging.getLogger(__name__)
SWEEP_CHUNK = 2000
#: A rescan hands the event loop back after this many leads (about 10 ms of scanning): the scan
#: of a partition that holds a million leads takes seconds, and the loop must keep running its
#: timers meanwhile. The pause fence among them reads a loop away for longer than it allows as a
#: worker frozen past its session, and ends the process.
SCAN_YIELD_EVERY = 1000
#: Records of a fetch decoded and committed together (process_batch says why).
PART_RECORDS = 5000
#: Leads whose last failure is remembered for lookups; past this the oldest are forgotten.
MAX_QUARANTINED = 10_000

#: (decoded event, the input record it came from)
Item = tuple[dict[str, Any], Any]


class PipelineStore(LeadStore, Protocol):
    """What the pipeline needs of the lead table besides the commit protocol's needs."""

    def get(self, partition: int, lead_id: str) -> LeadState | None: ...

    def get_raw_many(self, partition: int, lead_ids: list[str]) -> list[bytes | None]: ...

    def decode(self, raw: bytes) -> LeadState: ...

    def raw_items(self, partition: int) -> Iterable[tuple[bytes, bytes]]: ...

    def find(self, lead_id: str) -> LeadState | None: ...


class PipelineSender(Sender, Protocol):
    def partition_for(self, topic: str, key: bytes) -> int: ...


class LeadPipeline:
    """Input batches, sweeps and scans of the leads of this worker's partitions."""

    def __init__(self, machine: StageMachine, store: PipelineStore, outputs: OutputTopics,
                 metrics: Metrics, sender: PipelineSender, fence: PauseFence | None = None,
                 on_fatal: Callable[[BaseException], Any] = exit_process,
                 part_records: int = PART_RECORDS) -> None:
        self.machine = machine
        self.part_records = part_records
        self.store = store
        self.sender = sender
        self.metrics = metrics
        self.commits = CommitProtocol(store, sender, outputs, fence, on_fatal,
                                      metrics.dead_letters_dropped.inc)
        self.lock = asyncio.Lock()
        self.ready = False
        self.partitions: set[int] = set()
        self.stage_counts: dict[int, Counter[str]] = {}
        self.due = DueIndex()
        self.dead_letters = DeadLetterRouter(self._send_dead, outputs.dlq, metrics)
        #: lead -> why its last evaluation failed (shown by lookups; cleared by a good commit)
        self.quarantined: dict[str, str] = {}

    # --- input ---------------------------------------------------------------------------------

    async def process_batch(self, records: Sequence[Any]) -> None:
        """Records are the input topic's InputRecords (anything with topic, partition, offset, key,
        value, headers), in offset order within each partition.

        A fetch is handled in parts of whole partitions of about `part_records` records, each
        committed before the next is decoded: a lead lives in one partition, so each of its
        events in the fetch is still folded in with one state read and one write, while the
        decoded events and states held at once (the worker's peak memory) are those of one
        part, not of the whole fetch."""
        async with self.lock:
            with collection_paused():  # worker/garbage.py says why
                for part in self._parts(records):
                    await self._process_part(part)

    def _parts(self, records: Sequence[Any]) -> list[Sequence[Any]]:
        if len(records) <= self.part_records:
            return [records]  # most fetches of a worker that keeps up: no regrouping
        by_partition: dict[int, list[Any]] = defaultdict(list)
        for msg in records:
            by_partition[msg.partition].append(msg)
        parts: list[Sequence[Any]] = []
        part: list[Any] = []
        for partition_records in by_partition.values():
            if part and len(part) + len(partition_records) > self.part_records:
                parts.append(part)
                part = []
            part.extend(partition_records)
        parts.append(part)
        return parts

    async def _process_part(self, records: Sequence[Any]) -> None:
        now = wall_ms()
        groups: dict[tuple[int, str], list[Item]] = defaultdict(list)
        # (source, activity, outcome) -> events: one counter update per label set and part
        tally: Counter[tuple[str, str, str]] = Counter()
        # the labels (source, activity, outcome) of every event folded in, tallied once: a
        # Counter.update per lead cost more than its counting in Python's wrapper around it
        applied: list[tuple[str, str, str]] = []
        occurred: list[int] = []  # the occurred_at of every applied event, for its lag
        codec = self.commits.codec  # the worker's one AvroCodec, passed rather than looked up
        for msg in records:
            outcome, payload = admit(msg.key, msg.value, now, codec)
            if outcome is DEAD:
                self.dead_letters.route(payload, msg.topic, msg.partition, msg.offset)
            elif outcome is IGNORE:
                tally[(payload["source"], payload["activity"], "ignored")] += 1
            else:
                groups[(msg.partition, payload["lead_id"])].append((payload, msg))
        if groups:
            await self._reroute(groups)
        # A lead whose events would pile up more than OUTBOX_LIMIT unpublished changes is
        # committed and continued in another round, so no state outgrows its bound. The
        # first commit also carries the part's dead letters and re-routed records.
        stored = self._read_states(groups)
        pending = groups
        while True:
            self.commits.open({partition for partition, _ in pending})
            built: list[LeadRecords] = []
            rest: dict[tuple[int, str], list[Item]] = {}
            for key, items in pending.items():
                partition, lead_id = key
                left = self._apply(partition, lead_id, items, applied, occurred, built,
                                   key in stored, stored.pop(key, None))
                if left:
                    rest[key] = left
            await self._commit(built)
            if not rest:
                break
            pending = rest
        tally.update(applied)  # counted in C
        events_metric = self.metrics.events
        for labels, count in tally.items():
            events_metric.labels(*labels).inc(count)
        observe_many(self.metrics.event_lag, [max(0.0, (now - at) / 1000) for at in occurred])

    async def _reroute(self, groups: dict[tuple[int, str], list[Item]]) -> None:
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

    def _read_states(self, groups: dict[tuple[int, str], list[Item]]
                     ) -> dict[tuple[int, str], bytes | None]:
        """The encoded states of a batch's leads, one multi-get per partition."""
        by_partition: dict[int, list[str]] = defaultdict(list)
        for partition, lead_id in groups:
            by_partition[partition].append(lead_id)
        stored: dict[tuple[int, str], bytes | None] = {}
        for partition, lead_ids in by_partition.items():
            for lead_id, raw in zip(lead_ids, self.store.get_raw_many(partition, lead_ids),
                                    strict=True):
                stored[(partition, lead_id)] = raw
        return stored

    def _apply(self, partition: int, lead_id: str, items: list[Item],
               applied: list[tuple[str, str, str]], occurred: list[int], built: list[LeadRecords],
               read: bool = False, raw: bytes | None = None) -> list[Item]:
        """Fold a lead's events in and add its records to `built`; returns the events left
        for the next round. `raw` is the lead's encoded state if `read` with the batch (None:
        a new lead)."""
        machine = self.machine
        left: list[Item] = []
        mark, applied_mark = len(occurred), len(applied)
        try:
            if not read:  # a later round: the state as the last round committed it
                state = self._load(partition, lead_id) or LeadState(lead_id)
            elif raw is None:
                state = LeadState(lead_id)
            else:
                state = self.store.decode(raw)
                self.commits.settle(partition, state)
            update = LeadUpdate(partition, state, state.stage)
            for i, (event, msg) in enumerate(items):
                if len(state.outbox) >= OUTBOX_LIMIT:
                    left = items[i:]
                    break
                outcome = machine.fold(state, event, update.signals)
                applied.append((event["source"], event["activity"], outcome))  # a StrEnum
                occurred.append(event["occurred_at"])
                update.inputs.append(msg)
        except Exception as exc:  # a bug must not stop the stream: park the lead's events
            del occurred[mark:]  # none of its events was applied
            del applied[applied_mark:]
            self._lead_failed("event", lead_id, exc, [msg for _, msg in items])
            return []
        self._build(update, built)
        return left

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
            dead = DeadLetter(Reason.PROCESSING_ERROR, type(exc).__name__, str(exc)[:200],
                              msg.key, msg.value)
            self.dead_letters.route(dead, msg.topic, msg.partition, msg.offset)

    def _load(self, partition: int, lead_id: str) -> LeadState | None:
        state = self.store.get(partition, lead_id)
        if state is not None:
            self.commits.settle(partition, state)
        return state

    def _send_dead(self, topic: str, key: bytes | None, value: bytes | None,
                   headers: list[tuple[str, bytes]]) -> None:
        self.sender.add(topic, key, value, headers)  # flushed with the batch's step 1

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
                built: list[LeadRecords] = []
                for partition, lead_id in due:
                    if partition not in self.partitions:
                        continue
                    try:
                        state = self._load(partition, lead_id)
                        if state is None:
                            continue
                        update = LeadUpdate(partition, state, state.stage)
                        self.machine.advance(state, now_ms, update.signals)
                    except Exception as exc:  # the lead stays out of the due index
                        self._lead_failed("sweep", lead_id, exc)
                        continue
                    self._build(update, built)
                await self._commit(built)
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
            await self.commits.drain()  # the watermarks read next include the last batch's
            self.commits.reset(partitions)
            built: list[LeadRecords] = []
            scanned = 0
            for partition in sorted(partitions):
                for key, raw in self.store.raw_items(partition):
                    scanned += 1
                    if scanned % SCAN_YIELD_EVERY == 0:
                        await asyncio.sleep(0)
                    lead_id = key.decode(errors="replace")
                    try:
                        state = self.store.decode(raw)
                        self.commits.settle(partition, state)
                        update = LeadUpdate(partition, state, state.stage)
                        self.machine.redefine(state, update.signals)
                    except Exception as exc:  # one unreadable lead must not stop the scan
                        self._lead_failed("scan", lead_id, exc)
                        continue
                    if update.old_stage is not None:
                        self.stage_counts[partition][update.old_stage] += 1
                    if state.outbox or update.signals:
                        self._build(update, built)
                    else:
                        self.due.set(partition, lead_id, state.next_review)
                    if len(built) >= SWEEP_CHUNK:
                        await self._commit(built)
                        built = []
            await self._commit(built)
            self._set_gauge()
            self.ready = True

    async def drain(self) -> None:
        """Wait until the last commit's changes are acknowledged (commit.py, step 2): before a
        revocation or a shutdown lets the partitions go."""
        async with self.lock:
            await self.commits.drain()

    # --- after the commit protocol -------------------------------------------------------------

    def _build(self, update: LeadUpdate, built: list[LeadRecords]) -> None:
        """Add the lead's records for the open batch to `built`, or dead-letter its events if
        they cannot be built."""
        try:
            built.append(self.commits.build(update))
        except Exception as exc:
            self._lead_failed("encode", update.state.lead_id, exc, update.inputs)

    async def _commit(self, built: list[LeadRecords]) -> None:
        await self.commits.commit(built)
        quarantined = self.quarantined
        for b in built:
            self._count(b)
            self.due.set(b.partition, b.lead_id, b.next_review)
            if quarantined:
                quarantined.pop(b.lead_id, None)
        if built:
            self._record_metrics(built)

    def _record_metrics(self, committed: list[LeadRecords]) -> None:
        """After publishing: a metrics failure is logged and counted, never fatal."""
        try:
            record_signals(self.metrics, (s for u in committed for s in u.signals))
            self._set_gauge()
            self.metrics.quarantined.set(len(self.quarantined))
        except Exception as exc:
            log.exception("recording metrics failed: %s", exc)
            self.metrics.lead_failures.labels("metrics").inc()

    def _count(self, u: LeadRecords) -> None:
        stage = u.stage
        if stage == u.old_stage:
            return  # most updates: no stage moved
        counts = self.stage_counts.get(u.partition)
        if counts is None:
            counts = self.stage_counts[u.partition] = Counter()
        if u.old_stage is not None:
            counts[u.old_stage] -= 1
        if stage is not None:
            counts[stage] += 1

    def _set_gauge(self) -> None:
        totals: Counter[str] = Counter()
        for p in self.partitions:
            totals.update(self.stage_counts.get(p, Counter()))
        for stage in self.machine.definitions.stage_names:
            self.metrics.leads.labels(stage).set(totals.get(stage, 0))
