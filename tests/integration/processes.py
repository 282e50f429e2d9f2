"""Start a process for a test and always stop it again by its pid (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from streams.tools.processes import stop_process
from tests.paths import REPO_ROOT


@contextlib.contextmanager
def running(cmd: Sequence[str], env: Mapping[str, str], log_path: Path,
            stop_timeout_s: float = 30.0) -> Iterator[subprocess.Popen]:
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(list(cmd), cwd=REPO_ROOT, env={**os.environ, **env},
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            yield proc
        finally:
            stop_process(proc, stop_timeout_s)
