"""Runs real `leadstage worker` processes for tests, each on its own topics, port and data dir,
and reads what they published. Every process started here is stopped by pid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from streams.tools.processes import NotReady, stop_process, wait_healthy
from streams.wire.avro import avro_codec
from tests.fakes import activity_record
from tests.integration.kafka_helpers import read_topic
from tests.paths import REPO_ROOT

LEADSTAGE = str(Path(sys.executable).parent / "leadstage")


def worker_env(bootstrap: str, name: str, **extra: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "LEADSTAGE_APP_ID": f"{name}-app",
        "LEADSTAGE_TOPIC_ACTIVITY": f"{name}-activity",
        "LEADSTAGE_TOPIC_STAGE_CHANGES": f"{name}-changes",
        "LEADSTAGE_TOPIC_STAGES": f"{name}-stages",
        "LEADSTAGE_TOPIC_DLQ": f"{name}-dlq",
        "LEADSTAGE_PARTITIONS": "4",
        "LEADSTAGE_SWEEP_INTERVAL": "1",
        **extra,
    }


class Worker:
    def __init__(self, env: dict[str, str], data_dir: Path, port: int, log: Path) -> None:
        self.env = {**os.environ, **env, "LEADSTAGE_DATA_DIR": str(data_dir),
                    "LEADSTAGE_WEB_PORT": str(port)}
        self.port = port
        self.data_dir = data_dir
        self.log_path = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> Worker:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process owns it while it runs
        # e.g. LEADSTAGE_TEST_WORKER_PREFIX="python -m cProfile -o w.prof" to profile a worker
        prefix = os.environ.get("LEADSTAGE_TEST_WORKER_PREFIX", "").split()
        self.proc = subprocess.Popen([*prefix, LEADSTAGE, "worker", "-l", "info"],
                                     cwd=REPO_ROOT, env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(self.url(path), headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                body = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            body, status = exc.read(), exc.code
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode()

    def wait_ready(self, timeout_s: float = 90) -> None:
        try:
            wait_healthy(self.url(""), self.proc, timeout_s, self.log_path)
        except NotReady as exc:
            raise AssertionError(str(exc)) from None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def produce_raw(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for key, value in records:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def activity(event_id: str, lead_id: str, at: int, kind: str, **extra: Any) -> bytes:
    return avro_codec().encode("LeadActivity",
                               activity_record(event_id, lead_id, at, kind, **extra))


def changes(bootstrap: str, topic: str, want: int, timeout_s: float = 60) -> list[dict]:
    return [avro_codec().decode(r.value)[1] for r in read_topic(bootstrap, topic, want, timeout_s)]


def by_lead(records: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in records:
        out.setdefault(r["lead_id"], []).append(r)
    return out
