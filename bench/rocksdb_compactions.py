"""What RocksDB's background threads (flushes and compactions) cost the worker under the soak's
write pattern, with the worker's options (`streams/adapters/rocksdb_store.py`) and with one of
them changed at a time.

Eight partition databases, each first filled with PRELOAD leads (about the soak's middle: it
reaches 2.5 to 3 million leads in all), then written for SECONDS at RATE events/s in all: every
20 ms, per partition, one multi-get and one write batch (without the write-ahead log) of the
leads that tick touched, a fifth of them new and the rest among the partition's latest 6,250, as
`bench/soak.py` sends them. The states are real ones (`bench/rocksdb_reads.py`). Each variant
runs in a process of its own, so the CPU of the process's other threads is RocksDB's alone.
Measures and reports; asserts nothing.

    .venv/bin/python bench/rocksdb_compactions.py [variant ...]
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rocksdb_reads import WORKER_OPTIONS, states  # noqa: E402
from rocksdict import Rdict, WriteBatch, WriteOptions  # noqa: E402

from streams.adapters.rocksdb_store import LeadRocksDBOptions  # noqa: E402

PARTITIONS = 8
PRELOAD = int(os.environ.get("PRELOAD", 250_000))  # leads per partition before the clock starts
RATE = float(os.environ.get("RATE", 32_000))  # the soak's offered rate on 2026-12-05 22:15
SECONDS = float(os.environ.get("SECONDS", 90))
TICK = 0.02
RECENT = 6_250  # a partition's share of the soak's 50,000 recent leads
#: one option changed from the worker's at a time
VARIANTS: dict[str, dict[str, Any]] = {
    "the worker's": {},
    "Snappy (Faust's)": {"compression": "snappy"},
    "LZ4": {"compression": "lz4"},
    "4 files in level 0 (RocksDB's)": {"level0_compaction_trigger": 4},
    "Snappy and 4 files (before)": {"compression": "snappy", "level0_compaction_trigger": 4},
}


def thread_cpu() -> tuple[float, float]:
    """CPU seconds of this thread and of all the process's other threads."""
    mine = time.thread_time()
    return mine, time.process_time() - mine


def busy(db: Rdict) -> bool:
    return any(db.property_int_value(name) for name in (
        "rocksdb.num-running-compactions", "rocksdb.num-running-flushes",
        "rocksdb.compaction-pending", "rocksdb.mem-table-flush-pending"))


def run_variant(name: str) -> None:
    values = states()
    options = {**WORKER_OPTIONS, **VARIANTS[name]}
    rnd = random.Random(7)
    no_wal = WriteOptions()
    no_wal.disable_wal = True  # type: ignore[method-assign,assignment]
    folder = Path(tempfile.mkdtemp(prefix="rocksdb-compactions-"))
    try:
        dbs = [Rdict(str(folder / str(p)), options=LeadRocksDBOptions(**options).as_options())
               for p in range(PARTITIONS)]
        leads: list[list[bytes]] = [[] for _ in range(PARTITIONS)]
        counter = 0
        for p, db in enumerate(dbs):
            for _ in range(0, PRELOAD, 1_000):
                batch = WriteBatch(raw_mode=True)
                for _ in range(1_000):
                    key = f"lead-{counter:09d}".encode()
                    counter += 1
                    leads[p].append(key)
                    batch.put(key, values[rnd.randrange(len(values))])
                db.write(batch, no_wal)
        while any(busy(db) for db in dbs):
            time.sleep(0.5)
        main0, others0 = thread_cpu()
        per_tick, carry, late = RATE * TICK / PARTITIONS, 0.0, 0
        started = time.monotonic()
        for tick in range(int(SECONDS / TICK)):
            carry += per_tick
            count = int(carry)
            carry -= count
            for p, db in enumerate(dbs):
                keys = leads[p]
                touched: list[Any] = []
                for _ in range(count):
                    if rnd.random() < 0.2:
                        key = f"lead-{counter:09d}".encode()
                        counter += 1
                        keys.append(key)
                    else:
                        key = keys[len(keys) - 1 - rnd.randrange(RECENT)]
                    touched.append(key)
                db.get(touched)
                batch = WriteBatch(raw_mode=True)
                for key in touched:
                    batch.put(key, values[rnd.randrange(len(values))])
                db.write(batch, no_wal)
            wait = started + (tick + 1) * TICK - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            else:
                late += 1
        elapsed = time.monotonic() - started
        main1, others1 = thread_cpu()
        disk = sum(f.stat().st_size for f in folder.rglob("*.sst"))
        for db in dbs:
            db.close()
        print(f"{name:32}: RocksDB's threads {(others1 - others0) / elapsed:.3f} cores; "
              f"the writing thread {(main1 - main0) / elapsed:.3f}; "
              f"{disk / 2**20:,.0f} MB of files for {counter:,} leads; "
              f"{late} of {int(SECONDS / TICK)} ticks late", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--variant"]:
        run_variant(argv[1])
        return 0
    chosen = argv or list(VARIANTS)
    unknown = [name for name in chosen if name not in VARIANTS]
    if unknown:
        print(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}", file=sys.stderr)
        return 2
    print(f"{PARTITIONS} partitions x {PRELOAD:,} leads, then {RATE:,.0f} events/s for "
          f"{SECONDS:.0f} s")
    for name in chosen:
        subprocess.run([sys.executable, __file__, "--variant", name], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
