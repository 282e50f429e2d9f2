"""Child processes the tools (and the tests and benchmarks) start: one way to stop them, by
their process id, and one way to wait until a worker answers /healthz."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any


class NotReady(RuntimeError):
    """A worker exited, or did not become ready in time; the message has its log's tail."""


def stop_process(proc: subprocess.Popen[Any], timeout_s: float = 30.0) -> int:
    """SIGTERM, then SIGKILL if it has not exited after `timeout_s`; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def log_tail(log_path: Path | None, lines: int = 30) -> str:
    if log_path is None or not log_path.exists():
        return ""
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def healthy(base_url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/healthz", timeout=timeout_s) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_healthy(base_url: str, proc: subprocess.Popen[Any] | None = None,
                 timeout_s: float = 120.0, log_path: Path | None = None) -> None:
    """Until `base_url`/healthz answers 200; NotReady if `proc` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise NotReady(f"the worker exited ({proc.returncode}):\n{log_tail(log_path)}")
        if healthy(base_url):
            return
        time.sleep(0.5)
    raise NotReady(f"the worker did not become ready in {timeout_s:.0f} s:\n{log_tail(log_path)}")
