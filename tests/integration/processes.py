"""Start a process for a test and always stop it again by its pid (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from streams.config import PROJECT_ROOT


@contextlib.contextmanager
def running(cmd: Sequence[str], env: Mapping[str, str], log_path: Path,
            stop_timeout_s: float = 30.0) -> Iterator[subprocess.Popen]:
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(list(cmd), cwd=PROJECT_ROOT, env={**os.environ, **env},
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            yield proc
        finally:
            stop(proc, stop_timeout_s)


def stop(proc: subprocess.Popen, timeout_s: float = 30.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
