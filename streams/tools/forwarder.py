"""`leadstage forward --url URL`: every stage change to a webhook (DESIGN §10), for CRMs, chat
and automation tools that take webhooks, not Kafka.

Each change is POSTed as JSON (the LeadStageChanged fields; `changed_at` in ISO-8601 UTC) with
`Idempotency-Key: EVENT_ID` and `Leadstage-Signature: t=UNIX,v1=HEX`, HMAC-SHA256 of
`{t}.{body}` with the secret in LEADSTAGE_FORWARD_SECRET.

- 2xx: delivered. Timeouts, connection errors, 408, 429 and 5xx: retried with exponential
  backoff and full jitter, capped, honouring `Retry-After`. Any other 4xx: the original record
  goes to the forward DLQ with `leadstage.forward.status` and `leadstage.forward.reason`.
- A lead's changes are delivered one after the other, in order; leads are delivered
  concurrently, at most `concurrency` requests at a time.
- A partition's offset is committed only up to its lowest change not yet delivered or
  dead-lettered, so a crash or restart re-delivers (the receiver de-duplicates with the
  Idempotency-Key) and never skips.
- SIGTERM: no new fetches; deliveries under way get `grace_s` to finish; what finished is
  committed, the rest is delivered after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import hmac
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from streams.adapters.change_stream import ChangeStream, FetchedChange
from streams.core.calendar import format_timestamp

log = logging.getLogger(__name__)
RETRIED_STATUSES = frozenset({408, 429})
OUTCOMES = ("delivered", "retried", "dead_lettered", "filtered")


@dataclass(frozen=True)
class ForwardConfig:
    url: str
    secret: bytes
    topic: str
    dlq: str = "lead-stage-changes-forward-dlq"
    group_id: str = "leadstage-forward"
    stages: frozenset[str] = frozenset()  # empty: every stage ("none" for leaving)
    causes: frozenset[str] = frozenset()  # empty: every cause
    template: str = "json"  # json | slack
    concurrency: int = 64
    timeout_s: float = 10.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    grace_s: float = 10.0
    #: pending changes (fetched, not done) past which fetching waits
    max_pending: int = 5000


def sign(secret: bytes, body: bytes, now: int | None = None) -> str:
    """The Leadstage-Signature header value: t=UNIX,v1=HMAC-SHA256(secret, "t.body") in hex."""
    t = int(time.time()) if now is None else now
    digest = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(secret: bytes, header: str, body: bytes, tolerance_s: int = 300) -> bool:
    """What a receiver does with the header: the signature matches and is recent."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(time.time() - t) <= tolerance_s and hmac.compare_digest(expected,
                                                                       parts.get("v1", ""))


def body_of(change: Mapping[str, Any], template: str) -> bytes:
    document = {**change, "changed_at": format_timestamp(change["changed_at"])}
    if template == "slack":
        reached = change["stage"] or "no stage (left the population)"
        document = {"text": f"Lead {change['lead_id']}: {change['previous_stage'] or 'new'} → "
                            f"{reached} ({change['cause'].lower()}). {change['reason']}"}
    return json.dumps(document, separators=(",", ":")).encode()


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class ForwardMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.deliveries = Counter("leadstage_forward_deliveries", "Stage changes forwarded, by "
                                  "outcome (retried counts attempts that will be retried).",
                                  ["outcome"], registry=self.registry)
        self.attempt_seconds = Histogram("leadstage_forward_attempt_seconds",
                                         "Time of one webhook request.",
                                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                  2.5, 5, 10, 30), registry=self.registry)
        for outcome in OUTCOMES:
            self.deliveries.labels(outcome)


@dataclass
class _Partition:
    """Offsets of one partition: fetched but not done, and the next to fetch."""

    pending: set[int] = field(default_factory=set)
    next_offset: int = 0
    committed: int = -1

    def committable(self) -> int:
        return min(self.pending) if self.pending else self.next_offset


class Forwarder:
    def __init__(self, config: ForwardConfig, stream: ChangeStream,
                 session: aiohttp.ClientSession, metrics: ForwardMetrics,
                 rng: random.Random | None = None,
                 sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        self.config = config
        self.stream = stream
        self.session = session
        self.metrics = metrics
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.partitions: dict[int, _Partition] = {}
        self.queues: dict[str, deque[FetchedChange]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.requests = asyncio.Semaphore(config.concurrency)
        self.stopping = asyncio.Event()
        self.pending_count = 0
        self.ready = False
        #: why the forwarder stopped by itself, if it did
        self.failure: BaseException | None = None

    # --- the loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Fetch, deliver and commit until `stopping` is set, then wind down."""
        try:
            while not self.stopping.is_set():
                if self.pending_count >= self.config.max_pending:
                    await asyncio.sleep(0.05)
                    await self.commit()
                    continue
                records = await self.stream.fetch(timeout_ms=500)
                self.ready = True
                for record in records:
                    self._accept(record)
                await self.commit()
        finally:
            await self._wind_down()

    def _accept(self, record: FetchedChange) -> None:
        part = self.partitions.setdefault(record.partition, _Partition())
        if record.offset < part.next_offset:
            return  # fetched again after a rebalance while still pending
        part.next_offset = record.offset + 1
        change = record.change
        if change is not None and not self._wanted(change):
            self.metrics.deliveries.labels("filtered").inc()
            return
        part.pending.add(record.offset)
        self.pending_count += 1
        lead = change["lead_id"] if change is not None else f"\0{record.partition}"
        queue = self.queues.get(lead)
        if queue is not None:
            queue.append(record)  # the lead's task takes it, in order
            return
        self.queues[lead] = deque([record])
        task = asyncio.create_task(self._lead(lead))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _wanted(self, change: Mapping[str, Any]) -> bool:
        stages, causes = self.config.stages, self.config.causes
        return (not stages or (change["stage"] or "none") in stages) and (
            not causes or change["cause"] in causes)

    async def _lead(self, lead: str) -> None:
        queue = self.queues[lead]
        try:
            while queue:
                record = queue[0]
                if not await self._deliver(record):
                    return  # stopping: the rest is delivered after the restart
                queue.popleft()
                self._done(record)
        except Exception as exc:  # the DLQ refused a write: stop, nothing is committed past it
            log.critical("forwarding lead %s failed: %s: %s; stopping", lead,
                         type(exc).__name__, exc)
            self.failure = exc
            self.stopping.set()
        finally:
            if not queue or self.stopping.is_set():
                self.queues.pop(lead, None)

    def _done(self, record: FetchedChange) -> None:
        part = self.partitions[record.partition]
        part.pending.discard(record.offset)
        self.pending_count -= 1

    async def commit(self) -> None:
        offsets = {}
        for p, part in self.partitions.items():
            upto = part.committable()
            if upto > part.committed:
                offsets[p] = upto
        if not offsets:
            return
        try:
            await self.stream.commit(offsets)
        except Exception as exc:  # a rebalance: the partitions' new owner re-delivers
            log.warning("could not commit %s: %s: %s", offsets, type(exc).__name__, exc)
            return
        for p, upto in offsets.items():
            self.partitions[p].committed = upto

    async def _wind_down(self) -> None:
        self.stopping.set()
        if self.tasks:
            _, late = await asyncio.wait(set(self.tasks), timeout=self.config.grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self.commit()

    # --- one change ----------------------------------------------------------------------------

    async def _deliver(self, record: FetchedChange) -> bool:
        """Deliver (or dead-letter) one change; False if stopping before it was done."""
        if record.change is None:
            await self._dead_letter(record, 0, "undecodable: not a LeadStageChanged record")
            return True
        change = record.change
        body = body_of(change, self.config.template)
        attempt = 0
        while True:
            status, reason, wait = await self._attempt(change["event_id"], body)
            if status is not None and 200 <= status < 300:
                self.metrics.deliveries.labels("delivered").inc()
                return True
            retriable = status is None or status in RETRIED_STATUSES or status >= 500
            if not retriable:
                await self._dead_letter(record, status or 0, reason)
                return True
            self.metrics.deliveries.labels("retried").inc()
            if self.stopping.is_set():
                return False
            attempt += 1
            backoff = min(self.config.backoff_cap_s,
                          self.config.backoff_base_s * 2 ** min(attempt, 20))
            delay = wait if wait is not None else self.rng.uniform(backoff / 2, backoff)
            await self.sleep(min(delay, self.config.backoff_cap_s))

    async def _attempt(self, event_id: str, body: bytes
                       ) -> tuple[int | None, str, float | None]:
        """(status or None for no answer, reason, Retry-After seconds)."""
        headers = {"Content-Type": "application/json", "Idempotency-Key": event_id,
                   "Leadstage-Signature": sign(self.config.secret, body),
                   "User-Agent": "leadstage-forward"}
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
        async with self.requests:
            started = time.perf_counter()
            try:
                async with self.session.post(self.config.url, data=body, headers=headers,
                                             timeout=timeout) as response:
                    text = (await response.content.read(500)).decode(errors="replace")
                    return (response.status, text or response.reason or "",
                            retry_after(response.headers.get("Retry-After")))
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                return None, f"{type(exc).__name__}: {exc}"[:200], None
            finally:
                self.metrics.attempt_seconds.observe(time.perf_counter() - started)

    async def _dead_letter(self, record: FetchedChange, status: int, reason: str) -> None:
        await self.stream.dead_letter(self.config.dlq, record, [
            ("leadstage.forward.status", str(status).encode()),
            ("leadstage.forward.reason", reason[:500].encode(errors="replace")),
            ("leadstage.forward.url", self.config.url.encode(errors="replace"))])
        self.metrics.deliveries.labels("dead_lettered").inc()


def pages(forwarder: Forwarder) -> web.Application:
    """/healthz and /metrics of the forwarder's own HTTP port."""

    async def healthz(request: web.Request) -> web.Response:
        ready = forwarder.ready and not forwarder.stopping.is_set()
        return web.json_response({"status": "ready" if ready else "starting",
                                  "pending": forwarder.pending_count}, status=200 if ready
                                 else 503)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(forwarder.metrics.registry),
                            content_type=CONTENT_TYPE_LATEST.split(";")[0])

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


async def serve(config: ForwardConfig, stream: ChangeStream, host: str, port: int,
                stop: asyncio.Event) -> BaseException | None:
    """Run a forwarder and its HTTP pages until `stop` is set (or it fails: the failure is
    returned)."""
    metrics = ForwardMetrics()
    connector = aiohttp.TCPConnector(limit=config.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        forwarder = Forwarder(config, stream, session, metrics)
        runner = web.AppRunner(pages(forwarder), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        await stream.start(config.dlq)
        try:
            task = asyncio.create_task(forwarder.run())
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({task, stopped, asyncio.create_task(forwarder.stopping.wait())},
                               return_when=asyncio.FIRST_COMPLETED)
            forwarder.stopping.set()
            await task
            stopped.cancel()
        finally:
            with contextlib.suppress(Exception):
                await stream.stop()
            await runner.cleanup()
    return forwarder.failure
