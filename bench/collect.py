"""Collector throughput and latency (DESIGN §9): accepted events/s of `leadstage collect` with
batches of 100 events over keep-alive connections, and p99 request latency at 5,000 events/s.

    .venv/bin/python bench/collect.py     # uses $KAFKA_BOOTSTRAP_SERVERS or the local broker

The load generator is a separate process (its own core; the machine has two) with a bounded
number of connections and pre-encoded bodies, so the figure is the collector's, not the
client's. `make bench` runs it after the worker's measurements. Measures and reports; asserts
nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from local_kafka import bench_kafka, create_topics  # noqa: E402
from percentiles import percentile  # noqa: E402

PORT = 16570
BATCH = 100
CONNECTIONS = 16
MAX_REQUESTS = int(os.environ.get("BENCH_COLLECT_REQUESTS", "3000"))
RATE_EVENTS = 5000
RATE_SECONDS = 20


def bodies(count: int) -> list[bytes]:
    at = "2026-11-20T10:00:00+00:00"
    out = []
    for _ in range(count):
        out.append(json.dumps([
            {"event_id": uuid.uuid4().hex, "lead_id": f"L-{uuid.uuid4().hex[:8]}",
             "occurred_at": at, "source": "WEB",
             "activity": ("PAGE_VIEWED", "PRICING_VIEWED", "CONTACTED")[i % 3]}
            for i in range(BATCH)]).encode())
    return out


async def load(url: str, key: str, payloads: list[bytes], rate_per_s: float | None
               ) -> dict[str, Any]:
    """POST every payload over CONNECTIONS keep-alive connections, at most `rate_per_s`
    requests per second when given; latencies of every request."""
    import aiohttp

    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies: list[float] = []
    accepted = 0
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for p in payloads:
        queue.put_nowait(p)
    started = time.perf_counter()

    async def worker(session: aiohttp.ClientSession, index: int) -> None:
        nonlocal accepted
        sent = 0
        while True:
            try:
                body = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if rate_per_s is not None:  # each connection paces its share of the rate
                due = started + (sent * CONNECTIONS + index) / rate_per_s
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent += 1
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                answer = await response.read()
            latencies.append(time.perf_counter() - t0)
            statuses[response.status] = statuses.get(response.status, 0) + 1
            if response.status == 202:
                accepted += json.loads(answer)["accepted"]

    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session, i) for i in range(CONNECTIONS)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"accepted": accepted, "seconds": elapsed,
            "events_per_second": accepted / elapsed,
            "p50_ms": percentile(latencies, 0.5) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "statuses": statuses}


def measure(bootstrap: str) -> dict[str, Any]:
    from streams.tools.collector.keys import add_key
    from streams.tools.processes import stop_process, wait_healthy

    topic = f"bench-collect-{int(time.time())}"
    create_topics(bootstrap, [topic], 8)
    folder = Path(tempfile.mkdtemp(prefix="bench-collect-"))
    key = add_key(folder / "keys.yaml", "bench", "WEB", "server", [])
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "LEADSTAGE_TOPIC_ACTIVITY": topic,
           "LEADSTAGE_COLLECT_PORT": str(PORT), "LEADSTAGE_COLLECT_KEYS": str(folder / "keys.yaml")}
    log = open(folder / "collect.log", "wb")  # noqa: SIM115 - the process owns it
    proc = subprocess.Popen([str(Path(sys.executable).parent / "leadstage"), "collect"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{PORT}", proc, 60, folder / "collect.log")
        url = f"http://127.0.0.1:{PORT}/v1/events"

        def run(requests: int, rate: float | None) -> dict[str, Any]:
            out = subprocess.run(
                [sys.executable, __file__, "--load", url, key, str(requests),
                 "" if rate is None else str(rate)],
                capture_output=True, text=True, check=True, timeout=600)
            result: dict[str, Any] = json.loads(out.stdout)
            return result

        run(200, None)  # warm-up: connections, librdkafka metadata, the codec
        peak = run(MAX_REQUESTS, None)
        paced = run(RATE_EVENTS * RATE_SECONDS // BATCH, RATE_EVENTS / BATCH)
    finally:
        stop_process(proc)
        log.close()
    return {"collect_events_per_second": round(peak["events_per_second"], 1),
            "collect_p99_ms_at_peak": round(peak["p99_ms"], 1),
            "collect_p99_ms_at_5k": round(paced["p99_ms"], 1),
            "collect_p50_ms_at_5k": round(paced["p50_ms"], 1),
            "collect_statuses": {**peak["statuses"]}}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        url, key, requests, rate = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
        result = asyncio.run(load(url, key, bodies(requests), float(rate) if rate else None))
        print(json.dumps(result))
        return 0
    with bench_kafka() as bootstrap:
        print(json.dumps(measure(bootstrap), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
