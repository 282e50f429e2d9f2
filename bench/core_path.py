"""The worker's per-event work without Kafka or Faust: the `make bench` events, in order, through
the input gate, a state read (msgspec from an in-memory dict), the stage machine and a state
write. What a lever of the core saves shows here first, without a broker's noise.

    .venv/bin/python bench/core_path.py     # BENCH_EVENTS / BENCH_LEADS as for make bench
    .venv/bin/python -m cProfile -s tottime bench/core_path.py | head -40

Prints µs per event per step; measures and reports, asserts nothing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from run import DEFAULT, EVENTS, LEADS, records  # noqa: E402

from streams.core.clock import wall_ms  # noqa: E402
from streams.core.definitions.compiler import compile_definitions  # noqa: E402
from streams.core.definitions.loader import load_file  # noqa: E402
from streams.core.lead_state import LeadState, dumps, loads  # noqa: E402
from streams.core.stage_machine import StageMachine  # noqa: E402
from streams.wire.gate import APPLY, admit  # noqa: E402


def replay(recs: list[tuple[bytes, bytes]], machine: StageMachine) -> dict[str, float]:
    store: dict[bytes, bytes] = {}
    now = wall_ms()
    spent = {"gate": 0.0, "state load": 0.0, "stage machine": 0.0, "state encode": 0.0}
    clock = time.perf_counter
    for key, value in recs:
        t0 = clock()
        outcome, event = admit(key, value, now)
        t1 = clock()
        if outcome is not APPLY:
            continue
        raw = store.get(key)
        state = loads(raw) if raw is not None else LeadState(event["lead_id"])
        t2 = clock()
        machine.fold(state, event, [])
        state.published()  # as the commit protocol would
        t3 = clock()
        store[key] = dumps(state)
        t4 = clock()
        spent["gate"] += t1 - t0
        spent["state load"] += t2 - t1
        spent["stage machine"] += t3 - t2
        spent["state encode"] += t4 - t3
    return {step: seconds / len(recs) * 1e6 for step, seconds in spent.items()}


def main() -> None:
    recs = records(EVENTS, LEADS)
    machine = StageMachine(compile_definitions(load_file(DEFAULT)))
    for run in (1, 2):  # the second with warm caches (flip days, add_months)
        steps = replay(recs, machine)
        line = ", ".join(f"{step} {us:.1f}" for step, us in steps.items())
        print(f"run {run}: {sum(steps.values()):.1f} µs per event ({line}); "
              f"{len(recs):,} events, {LEADS:,} leads")


if __name__ == "__main__":
    main()
