"""What a lead's state read costs in one partition's RocksDB database, opened with the worker's
options (`streams/adapters/rocksdb_store.py`) and with one of them changed at a time beside them.

The pattern is the worker's: a part reads its leads with one multi-get and writes them back in
one write batch without the write-ahead log; a fifth of the leads it reads are new (the
`make bench` workload has 100,000 leads in 500,000 events). The states are real: the bench
events of BENCH_STATE_LEADS leads folded in by the stage machine. Measures and reports;
asserts nothing.

    .venv/bin/python bench/rocksdb_reads.py
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rocksdict import Rdict, WriteBatch, WriteOptions  # noqa: E402

from streams.adapters.rocksdb_store import LeadRocksDBOptions, table_options  # noqa: E402
from streams.adapters.settings import Settings  # noqa: E402
from streams.core.definitions.compiler import compile_definitions  # noqa: E402
from streams.core.definitions.loader import load_file  # noqa: E402
from streams.core.lead_state import LeadState, dumps  # noqa: E402
from streams.core.stage_machine import StageMachine  # noqa: E402
from streams.tools.generator import Generator, as_json  # noqa: E402
from streams.wire.json_lines import parse_line  # noqa: E402

STATE_LEADS = 10_000
LEADS = 12_500  # one of 8 partitions' share of the bench's 100,000 leads
PARTS = 400
READ, NEW = 500, 100  # leads a part reads from one partition, and how many of them are new
#: the lead table's options as a worker with default settings opens it
WORKER_OPTIONS = table_options(Settings().state_compression)
#: one option changed from the worker's at a time
VARIANTS: dict[str, dict[str, Any]] = {
    "the worker's": {},
    "Snappy compression (Faust's)": {"compression": "snappy"},
    "LZ4 compression": {"compression": "lz4"},
    "4 files in level 0 (RocksDB's)": {"level0_compaction_trigger": 4},
    "bloom filters of 3 bits (Faust's)": {"bloom_filter_size": 3},
    "bloom filters of 16 bits": {"bloom_filter_size": 16},
}


def states() -> list[bytes]:
    compiled = compile_definitions(load_file(ROOT / "definitions" / "lead-stages.yaml"))
    machine = StageMachine(compiled)
    leads: dict[str, LeadState] = {}
    for event in Generator(compiled, seed=42).history(STATE_LEADS, 120, int(time.time() * 1000)):
        record = parse_line(json.dumps(as_json(event)))
        state = leads.setdefault(record["lead_id"], LeadState(record["lead_id"]))
        machine.fold(state, record, [])
        state.published()
    return [dumps(s) for s in leads.values()]


def measure(options: dict[str, Any], values: list[bytes], folder: Path) -> tuple[float, float]:
    """µs per lead read and per lead written, over PARTS parts of READ + NEW leads."""
    db = Rdict(str(folder), options=LeadRocksDBOptions(**options).as_options())
    no_wal = WriteOptions()
    no_wal.disable_wal = True  # type: ignore[method-assign,assignment]
    rnd = random.Random(1)
    keys = [f"L-{i:06d}".encode() for i in range(LEADS)]
    batch = WriteBatch(raw_mode=True)
    for i, key in enumerate(keys):
        batch.put(key, values[i % len(values)])
    db.write(batch, no_wal)
    spent, writing, reads = 0.0, 0.0, 0
    for part in range(PARTS):
        asked: list[Any] = rnd.sample(keys, READ) + [f"N-{part}-{i}".encode() for i in range(NEW)]
        started = time.perf_counter()
        db.get(asked)
        spent += time.perf_counter() - started
        reads += len(asked)
        batch = WriteBatch(raw_mode=True)
        for key in asked:
            batch.put(key, values[rnd.randrange(len(values))])
        started = time.perf_counter()
        db.write(batch, no_wal)
        writing += time.perf_counter() - started
        keys += asked[READ:]
    db.close()
    return spent / reads * 1e6, writing / reads * 1e6


def main() -> int:
    values = states()
    print(f"{len(values):,} states, {sum(map(len, values)) / len(values):,.0f} bytes on average")
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as work:
        for run in range(3):  # alternating: background compactions share the cores
            for n, (name, change) in enumerate(VARIANTS.items()):
                folder = Path(work) / f"db-{n}-{run}"
                figures[name].append(measure({**WORKER_OPTIONS, **change}, values, folder))
                shutil.rmtree(folder)
    for name, runs in figures.items():
        print(f"{name:34}: read {', '.join(f'{r:.2f}' for r, _ in runs)} µs per lead; "
              f"write {', '.join(f'{w:.2f}' for _, w in runs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
