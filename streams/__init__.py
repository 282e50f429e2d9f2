"""leadstage: objective lead stages computed live from Kafka events.

The pure core (definitions, facts, evaluation, lead state) imports neither Faust nor Kafka; the
shell (Faust app, codecs, metrics, web views, CLI, local broker) wires it to the outside world.

The hot modules (MODULES) are compiled to C by Cython when the package is installed (setup.py).
They stay plain Python: Cython compiles them as they are, their annotations not turned into C
types (`annotation_typing=False`), so they behave exactly as interpreted, and a machine without
a C compiler runs the same code interpreted. The exceptions are declared, not annotated: a
`.pxd` beside a module gives C integer types to the locals of a few arithmetic functions (the
Avro varints), and the prebuilt Avro decoders declare theirs (wire/avro_codegen.py); each is
tested against its interpreted source at every edge.

A compiled module is a file beside its source (`stage_machine.cpython-311-x86_64-linux-gnu.so`),
which Python's import system prefers to the `.py`. So, when this package is first imported:

- in a source checkout, a compiled module older than its source (the source edited, or another
  branch checked out, since the last build) is not used: its source is, with a warning; `make`
  rebuilds it;
- `LEADSTAGE_COMPILED=0` runs every hot module interpreted; at build time it builds none.

This file imports only the standard library: setup.py reads MODULES from it before the
package's dependencies are installed.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

#: The modules a worker spends its time in (bench/README.md, "Compiled with Cython"): the
#: stage machine and what it reads, the input gate, the Avro codecs (with those generated from
#: the shipped schemas, wire/avro_codegen.py), the lead store and the batch sender, the pipeline
#: and its commit protocol.
MODULES = (
    "streams.core.calendar",
    "streams.core.routing",
    "streams.core.lead_history",
    "streams.core.lead_state",
    "streams.core.due_index",
    "streams.core.definitions.compiler",
    "streams.core.definitions.review",
    "streams.core.stage_machine",
    "streams.wire.avro_decoder",
    "streams.wire.avro_encoder",
    "streams.wire.avro_prebuilt",
    "streams.wire.avro",
    "streams.wire.validation",
    "streams.wire.gate",
    "streams.wire.outputs",
    "streams.adapters.histograms",
    "streams.adapters.murmur2",
    "streams.adapters.input_records",
    "streams.adapters.produce_wire",
    "streams.adapters.lead_store",
    "streams.adapters.batch_sender",
    "streams.worker.metrics_recorder",
    "streams.worker.commit",
    "streams.worker.pipeline",
)
#: Set to 0 to build or run every hot module interpreted.
SWITCH = "LEADSTAGE_COMPILED"
ROOT = Path(__file__).resolve().parent.parent


def wanted() -> bool:
    return os.environ.get(SWITCH, "1") != "0"


def source_of(module: str, root: Path = ROOT) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def compiled_of(source: Path) -> Path | None:
    """The extension module built from `source`, if there is one beside it."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = source.with_suffix(suffix)
        if candidate.exists():
            return candidate
    return None


def stale(modules: Sequence[str] = MODULES, root: Path = ROOT) -> list[str]:
    """The modules whose compiled file is older than their source, or than the C types
    declared for it (a `.pxd` beside the source)."""
    found = []
    for module in modules:
        source = source_of(module, root)
        built = compiled_of(source)
        if built is None or not source.exists():
            continue
        declared = source.with_suffix(".pxd")
        edited = max(source.stat().st_mtime_ns,
                     declared.stat().st_mtime_ns if declared.exists() else 0)
        if edited > built.stat().st_mtime_ns:
            found.append(module)
    return found


def running_compiled(module: ModuleType) -> bool:
    return not (module.__file__ or "").endswith(".py")


class _SourceFinder:
    """Finds the named modules' sources, ahead of the compiled files beside them."""

    def __init__(self, modules: Sequence[str], root: Path) -> None:
        self.modules = {m: source_of(m, root) for m in modules}

    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        source = self.modules.get(fullname)
        if source is None or not source.exists():
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def _install_guard() -> None:
    """Called once, when the package is first imported, before any hot module is."""
    in_checkout = (ROOT / "pyproject.toml").exists()  # an installed wheel's files never change
    if not wanted():
        sys.meta_path.insert(0, _SourceFinder(MODULES, ROOT))
    elif in_checkout:
        old = stale()
        if old:
            warnings.warn(f"{len(old)} compiled module(s) older than their source run "
                          f"interpreted until rebuilt (`make .venv`): {', '.join(old)}",
                          stacklevel=2)
            sys.meta_path.insert(0, _SourceFinder(old, ROOT))


__version__ = "0.1.0"

if __name__ == "streams":  # not when setup.py reads this file on its own
    _install_guard()
