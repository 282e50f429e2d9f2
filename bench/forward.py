"""Forwarder throughput (DESIGN §10): deliveries/s of `leadstage forward` to a local receiver
that answers at once, and one that takes 20 ms per request (where concurrency matters).

    .venv/bin/python bench/forward.py        # uses $KAFKA_BOOTSTRAP_SERVERS or the local broker

`make bench` runs it after the worker's measurements. Measures and reports; asserts nothing.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

from aiohttp import web
from kafka import KafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from local_kafka import bench_kafka, create_topics  # noqa: E402

from streams.tools.processes import stop_process  # noqa: E402
from streams.wire.avro import avro_codec  # noqa: E402

CHANGES = int(os.environ.get("BENCH_FORWARD_CHANGES", "10000"))
LEADS = 2000
SECRET = "bench-secret"


class CountingReceiver:
    """Answers 200 after `latency_s`; counts distinct idempotency keys, on 127.0.0.1."""

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.keys: set[str] = set()
        self.first: float | None = None
        self.last = 0.0
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def _hook(self, request: web.Request) -> web.Response:
        await request.read()
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        now = time.perf_counter()
        self.first = self.first or now
        self.last = now
        self.keys.add(request.headers["Idempotency-Key"])
        return web.Response(status=200)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self) -> CountingReceiver:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def produce_changes(bootstrap: str, topic: str) -> None:
    create_topics(bootstrap, [topic], 8)
    codec = avro_codec()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    per_lead = CHANGES // LEADS
    for seq in range(1, per_lead + 1):
        for i in range(LEADS):
            lead = f"B-{i}"
            producer.send(topic, key=lead.encode(), value=codec.encode("LeadStageChanged", {
                "event_id": f"{lead}:{seq}", "lead_id": lead, "sequence": seq,
                "previous_stage": None, "stage": "warm", "changed_at": 1_795_000_000_000 + seq,
                "cause": "EVENT", "cause_event_id": None, "definitions_version": 1,
                "reason": "warm: interest_signals >= 1", "facts": {"contacts": "1"}}))
    producer.flush()
    producer.close()


def deliveries_per_second(bootstrap: str, latency_ms: float) -> float:
    name = f"bench-fwd-{random.randrange(10**6)}"
    topic = f"{name}-changes"
    produce_changes(bootstrap, topic)
    with CountingReceiver(latency_ms / 1000) as receiver:
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
               "LEADSTAGE_TOPIC_STAGE_CHANGES": topic, "LEADSTAGE_FORWARD_SECRET": SECRET,
               "LEADSTAGE_FORWARD_PORT": "16471"}
        log = open(ROOT / ".cache" / "bench" / "forward.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "leadstage"), "forward", "--url",
                                 f"http://127.0.0.1:{receiver.port}/hook", "--group", name,
                                 "--dlq", f"{name}-dlq"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 600
            while len(receiver.keys) < CHANGES and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            stop_process(proc)
            log.close()
        assert receiver.first is not None
        return len(receiver.keys) / max(receiver.last - receiver.first, 1e-9)


def main() -> int:
    (ROOT / ".cache" / "bench").mkdir(parents=True, exist_ok=True)
    with bench_kafka() as bootstrap:
        for latency in (0.0, 20.0):
            rate = deliveries_per_second(bootstrap, latency)
            print(f"forwarder, receiver latency {latency:.0f} ms: {rate:,.0f} deliveries/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
