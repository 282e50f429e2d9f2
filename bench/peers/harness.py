"""Builds and runs the two peers of `make bench` on a topic of LeadActivity records:

- the Quix Streams peer (`quix_peer.py`) in a virtualenv of its own under `.cache/peers/`
  (Quix Streams pins confluent-kafka below the version leadstage uses, so they do not share one);
- the Kafka Streams peer (`kafka-streams/`), built by Maven like the local broker.

Each returns events/s from its first processed event to its last, and its peak RSS; the
change records it wrote are on OUTPUT for the equality test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PEERS = ROOT / "bench" / "peers"
CACHE = ROOT / ".cache" / "peers"
QUIX_VERSION = "3.28.1"
SCHEMA = ROOT / "schemas" / "LeadActivity.avsc"
JVM = PEERS / "kafka-streams"


@dataclass
class PeerRun:
    events: int
    seconds: float
    peak_rss_mb: float

    @property
    def events_per_second(self) -> float:
        return self.events / max(self.seconds, 1e-9)


def quix_python() -> Path:
    """The peer's interpreter, with Quix Streams installed (once)."""
    venv = CACHE / f"quix-{QUIX_VERSION}"
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        f"quixstreams=={QUIX_VERSION}", "fastavro>=1.9,<2"], check=True)
        (venv / ".installed").touch()
    return python


def kafka_streams_classpath() -> str:
    """Builds the JVM peer when its sources changed; its classpath."""
    jar = JVM / "target" / "leadstage-kafka-streams-peer-1.jar"
    sources = [JVM / "pom.xml", *(JVM / "src").rglob("*.java")]
    if not jar.exists() or max(p.stat().st_mtime for p in sources) > jar.stat().st_mtime:
        if shutil.which("mvn") is None:
            raise RuntimeError("Maven (mvn) is needed to build the Kafka Streams peer")
        subprocess.run(["mvn", "-q", "-B", "-f", str(JVM / "pom.xml"), "package"], check=True,
                       timeout=900)
    return f"{jar}:{JVM / 'target' / 'libs'}/*"


def _watch_rss(proc: subprocess.Popen[bytes], peak: list[float]) -> None:
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak[0] = max(peak[0], int(line.split()[1]) / 1024)
        except OSError:
            return
        time.sleep(0.5)


def _run(command: list[str], log: Path, timeout_s: float) -> PeerRun:
    log.parent.mkdir(parents=True, exist_ok=True)
    peak = [0.0]
    with open(log, "wb") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err,
                                stdin=subprocess.DEVNULL)
        watcher = threading.Thread(target=_watch_rss, args=(proc, peak), daemon=True)
        watcher.start()
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"{command[0]} did not finish in {timeout_s:.0f} s; "
                               f"see {log}") from None
    if proc.returncode != 0:
        raise RuntimeError(f"{command[0]} exited {proc.returncode}; see {log}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    return PeerRun(result["events"], result["done"] - result["first"], peak[0])


def run_quix(bootstrap: str, source: str, target: str, expected: int,
             timeout_s: float = 1800) -> PeerRun:
    name = f"quix-{os.getpid()}-{int(time.time() * 1000)}"
    state = CACHE / "state" / name
    try:
        return _run([str(quix_python()), str(PEERS / "quix_peer.py"), bootstrap, source, target,
                     name, str(state), str(SCHEMA), str(expected)],
                    CACHE / "logs" / f"{name}.log", timeout_s)
    finally:
        shutil.rmtree(state, ignore_errors=True)


def run_kafka_streams(bootstrap: str, source: str, target: str, expected: int,
                      timeout_s: float = 1800) -> PeerRun:
    name = f"kstreams-{os.getpid()}-{int(time.time() * 1000)}"
    state = CACHE / "state" / name
    try:
        return _run(["java", "-cp", kafka_streams_classpath(), "leadstage.peer.StagePeer",
                     bootstrap, source, target, name, str(state), str(SCHEMA), str(expected)],
                    CACHE / "logs" / f"{name}.log", timeout_s)
    finally:
        shutil.rmtree(state, ignore_errors=True)
