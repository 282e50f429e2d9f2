"""Where the worker's time goes: py-spy samples a leadstage worker through the `make bench`
workload and the samples are split into the stages of issue #18 (consume, decode, state load,
evaluate, state encode, changelog produce, outputs, commit, metrics, the rest).

    make profile        # installs py-spy; BENCH_EVENTS / BENCH_LEADS as for make bench
    .venv/bin/python bench/stage_profile.py --raw FILE EVENTS SECONDS   # split saved samples again

Each sample is counted once, in the stage of its innermost frame that names one (so fastavro
under `Registry.decode` is "decode", and aiokafka under `BatchSender.flush` is "produce").
Prints the table and writes `bench/stage_profile.json`. Measures and reports; asserts nothing.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from local_kafka import bench_kafka, create_topics  # noqa: E402
from run import (  # noqa: E402
    EVENTS,
    LEADS,
    PARTITIONS,
    WORK,
    LeadstageWorker,
    fresh_work,
    produce,
    records,
    wait_for,
)

#: (stage, patterns of "function (file" in a py-spy frame), innermost match wins
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("outputs", ("encode (streams/wire/avro.py", "(streams/wire/outputs.py")),
    ("decode", ("(streams/wire/avro.py", "(streams/wire/gate.py", "(streams/wire/validation.py",
                "(streams/adapters/faust_codecs.py")),
    ("state load", ("loads (streams/core/lead_state.py", "get (streams/adapters/lead_store.py",
                    "get_raw_many (streams/adapters/lead_store.py",
                    "_read_states (streams/worker/pipeline.py",
                    "_load (streams/worker/pipeline.py")),
    ("state encode", ("dumps (streams/core/lead_state.py",
                      "encode (streams/adapters/lead_store.py")),
    ("evaluate", ("(streams/core/stage_machine.py", "(streams/core/lead_history.py",
                  "(streams/core/definitions/", "(<string>", "(streams/core/due_index.py")),
    ("produce", ("(streams/adapters/batch_sender.py", "aiokafka/producer")),
    ("commit", ("(streams/worker/commit.py", "put_local_many (streams/adapters/lead_store.py",
                "faust/transport/consumer.py", "commit")),
    ("metrics", ("(streams/worker/metrics", "prometheus_client")),
    ("consume", ("(streams/adapters/batch_consumer.py", "aiokafka/consumer",
                 "aiokafka/record", "aiokafka/conn", "faust/transport/drivers/aiokafka")),
    ("pipeline", ("(streams/worker/pipeline.py",)),
]


def classify(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):  # innermost first
        for stage, patterns in STAGES:
            if any(p in frame for p in patterns):
                return stage
    # native stacks (--native) sample every thread, waiting ones too: the selector's frame
    # under epoll_wait, and a thread waiting for the interpreter's lock in pthread_cond_wait
    if any("idle" in f or "select (selectors.py" in f or "poll (selectors" in f
           or "pthread_cond_wait (" in f or "pthread_cond_timedwait (" in f
           for f in frames[-4:]):
        return "idle (waiting for I/O)"
    return "the rest (event loop, Faust, Python)"


def split(raw: Path, events: int, seconds: float) -> dict[str, dict[str, float]]:
    """The samples of a py-spy raw file per stage: share of busy samples, µs per event."""
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            counts[classify(stack)] += int(n)
    busy = sum(n for stage, n in counts.items() if not stage.startswith("idle"))
    per_event_us = seconds / events * 1e6
    out = {stage: {"share": round(n / busy, 3), "us_per_event": round(n / busy * per_event_us, 1)}
           for stage, n in counts.most_common() if not stage.startswith("idle")}
    idle = sum(n for stage, n in counts.items() if stage.startswith("idle"))
    out["idle"] = {"share": round(idle / max(busy + idle, 1), 3), "us_per_event": 0.0}
    return out


def show(console: Console, events: int, seconds: float,
         stages: dict[str, dict[str, float]]) -> None:
    table = Table(title=f"worker time per stage ({events:,} events, "
                        f"{events / seconds:,.0f} events/s under py-spy)")
    for col in ("stage", "share of busy samples", "µs per event"):
        table.add_column(col)
    for stage, figures in stages.items():
        if stage == "idle":
            table.add_row("(idle, not in the shares)", f"{figures['share']:.1%} of samples", "")
        else:
            table.add_row(stage, f"{figures['share']:.1%}", f"{figures['us_per_event']:.1f}")
    console.print(table)


def main() -> int:
    console = Console()
    if len(sys.argv) == 5 and sys.argv[1] == "--raw":  # split an earlier run's samples again
        raw, events, seconds = Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
        show(console, events, seconds, split(raw, events, seconds))
        return 0
    fresh_work()
    with bench_kafka(console.print) as bootstrap:
        return sample(console, bootstrap)


def sample(console: Console, bootstrap: str) -> int:
    spy = shutil.which("py-spy") or str(ROOT / ".venv" / "bin" / "py-spy")
    name = f"profile-{random.randrange(10**6)}"
    topic = f"{name}-input"
    out = WORK / f"{name}.raw"
    worker = None
    try:
        create_topics(bootstrap, [topic], PARTITIONS)
        with console.status(f"producing {EVENTS} events for {LEADS} leads"):
            recs = records(EVENTS, LEADS)
            produce(bootstrap, topic, recs)
        worker = LeadstageWorker(bootstrap, topic, name)
        worker.start()
        wait_for(worker.ready, 120)
        assert worker.proc is not None
        # --native: the hot modules run compiled (streams/__init__.py), and py-spy names their
        # functions, with the .py file and line, only from native stacks, which it cannot read
        # without pausing the worker for each sample (no --nonblocking)
        sampler = subprocess.Popen([spy, "record", "--pid", str(worker.proc.pid), "--rate", "250",
                                    "--format", "raw", "--output", str(out), "--native"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with console.status("worker under py-spy"):
            first = wait_for(lambda: worker.events_done() > 0, 120, 0.1)
            done = wait_for(lambda: worker.events_done() >= len(recs), 1800, 0.5)
        sampler.send_signal(2)  # py-spy writes its file on SIGINT
        sampler.wait(timeout=60)
        time.sleep(0.5)
    finally:
        if worker is not None:
            worker.stop()
    seconds = done - first
    stages = split(out, len(recs), seconds)
    show(console, len(recs), seconds, stages)
    (ROOT / "bench" / "stage_profile.json").write_text(json.dumps(
        {"events": len(recs), "seconds": round(seconds, 2), "raw": str(out),
         "us_per_event": round(seconds / len(recs) * 1e6, 1), "stages": stages}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
