"""Machine instructions per event of the in-process pipeline (bench/pipeline_loop.py's loop),
counted by valgrind's cachegrind: the same count on every run of the same code and workload,
where CPU time on this shared two-core machine moves by 10-20% between runs. A lever worth 1%
shows in one run of each tree; confirm what it saves in time with pipeline_loop.py and
`make bench` (instructions are not time: a C call that allocates counts as little as it costs).

    .venv/bin/python bench/pipeline_instructions.py [WORKLOAD]
    # WORKLOAD: a file for the generated events; made if missing, reused if there, so two trees
    # are compared on the very same events (the generator dates them from today)

The pipeline runs twice under cachegrind, once with no events and once with all of them; the
difference divided by the events is the figure. 25,000 events of 5,000 leads (BENCH_EVENTS and
BENCH_LEADS scale it): the make bench mix at a twentieth of its size, about a minute.
Needs valgrind (Debian's `valgrind` package). Measures and reports; asserts nothing.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

EVENTS = int(os.environ.get("BENCH_EVENTS", "25000"))
LEADS = int(os.environ.get("BENCH_LEADS", "5000"))


def child(workload: Path, count: int) -> None:
    """Runs under valgrind: the pipeline over the first `count` events of the workload. Every
    event is made a message in both runs, so the harness's own work (a pure-Python murmur2 per
    key, in `partition_of`) drops out of the difference."""
    from pipeline_loop import as_messages, run

    partitions, recs = pickle.loads(workload.read_bytes())
    asyncio.run(run(as_messages(recs, partitions)[:count]))


def instructions(workload: Path, count: int) -> int:
    """Instructions cachegrind counts for a run of `count` events (imports included)."""
    out = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, __file__, "--child", str(workload), str(count)],
        capture_output=True, text=True, check=True, cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "0"})  # the same dict layouts on every run
    found = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind:\n{out.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), int(sys.argv[3]))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        workload = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(scratch) / "workload"
        if not workload.exists():
            from run import PARTITIONS, records
            workload.write_bytes(pickle.dumps((PARTITIONS, records(EVENTS, LEADS))))
        _, recs = pickle.loads(workload.read_bytes())
        setup = instructions(workload, 0)
        total = instructions(workload, len(recs))
    per_event = (total - setup) / len(recs)
    print(f"{len(recs):,} events: {per_event / 1000:,.1f}k instructions per event through "
          f"LeadPipeline.process_batch ({total - setup:,} of {total:,} counted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
