"""Runs real `leadstage collect` processes for tests and talks HTTP to them; every process
started here is stopped by pid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from streams.tools.collector.keys import add_key
from streams.tools.processes import NotReady, stop_process, wait_healthy
from tests.paths import REPO_ROOT

LEADSTAGE = str(Path(sys.executable).parent / "leadstage")


class CollectorProcess:
    def __init__(self, bootstrap: str, topic: str, port: int, folder: Path,
                 **extra: str) -> None:
        self.port = port
        self.keys_file = folder / f"keys-{port}.yaml"
        self.log_path = folder / f"collect-{port}.log"
        self.env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                    "LEADSTAGE_TOPIC_ACTIVITY": topic,
                    "LEADSTAGE_COLLECT_PORT": str(port),
                    "LEADSTAGE_COLLECT_KEYS": str(self.keys_file), **extra}
        self.proc: subprocess.Popen | None = None

    def add_key(self, key_id: str, source: str = "WEB", kind: str = "server",
                origins: list[str] | None = None) -> str:
        """A key, added before start (the collector reads the file when it starts)."""
        return add_key(self.keys_file, key_id, source, kind, origins or [])

    def start(self, timeout_s: float = 60) -> CollectorProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process owns it while it runs
        self.proc = subprocess.Popen([LEADSTAGE, "collect"], cwd=REPO_ROOT, env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        try:
            wait_healthy(self.url(""), self.proc, timeout_s, self.log_path)
        except NotReady as exc:
            self.stop()
            raise AssertionError(str(exc)) from None
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout_s: float = 30
                ) -> tuple[int, Any, dict[str, str]]:
        request = urllib.request.Request(self.url(path), data=body, method=method,
                                         headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                raw, status, got = response.read(), response.status, dict(response.headers)
        except urllib.error.HTTPError as exc:
            raw, status, got = exc.read(), exc.code, dict(exc.headers)
        try:
            return status, json.loads(raw), got
        except ValueError:
            return status, raw.decode(errors="replace"), got

    def post_events(self, key: str, events: Any, content_type: str = "application/json",
                    extra: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
        body = events if isinstance(events, bytes) else json.dumps(events).encode()
        return self.request("POST", "/v1/events", body, {
            "Authorization": f"Bearer {key}", "Content-Type": content_type, **(extra or {})})

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
