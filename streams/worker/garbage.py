"""How CPython's cycle collector runs in the worker.

The hot path allocates a few hundred objects per event, and nearly all of them die by reference
counting when their batch is done. They are not cyclic garbage, yet every young collection
during a batch walks all of them (they are alive then), and each older one walks them again:
time spent finding almost nothing to free (bench/README.md, "Garbage collection"). So:

- at start-up, young collections run every 50,000 allocations instead of 700, and what exists
  then (modules, definitions, the solver) is left out of full passes (`settle_memory`);
- while an input batch is handled, the collector does not run at all (`collection_paused`).
  The batch's objects are freed when it ends, and the next pass after it collects whatever
  cycles it left, so what the collector has not yet freed is bounded by one batch.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_EVERY = 50_000


def settle_memory() -> None:
    """After the worker is built: fewer young passes, and start-up objects frozen."""
    gc.set_threshold(YOUNG_EVERY, 20, 10)
    gc.freeze()


@contextmanager
def collection_paused() -> Iterator[None]:
    """No cycle collection inside the block; the collector as it was after it, even if the
    block raised (a caller that had it disabled keeps it disabled)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
