"""The hot modules run compiled, and never older than their source (streams/__init__.py)."""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import streams

ROOT = Path(__file__).resolve().parents[2]
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def _where(module: str, root: Path, **env: str) -> str:
    """The file `module` is loaded from by a fresh interpreter run in `root`, and its warnings."""
    run = subprocess.run(
        [sys.executable, "-c", f"import {module} as m; print(m.__file__)"],
        cwd=root, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(root), **env})
    assert run.returncode == 0, run.stderr
    return run.stdout.strip() + "\n" + run.stderr


def test_every_hot_module_runs_compiled_in_the_tested_build() -> None:
    # `make .venv` builds them; the tests then test what the worker runs
    if not streams.wanted():
        pytest.fail("LEADSTAGE_COMPILED=0: the tests would not run the compiled modules")
    interpreted = [m for m in streams.MODULES
                   if not streams.running_compiled(importlib.import_module(m))]
    assert interpreted == []


def test_the_switch_runs_every_hot_module_interpreted() -> None:
    for module in ("streams.core.stage_machine", "streams.worker.pipeline"):
        assert _where(module, ROOT, LEADSTAGE_COMPILED="0").splitlines()[0] \
            == str(streams.source_of(module))


def test_stale_names_a_module_whose_source_is_newer_than_its_build(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    for name in ("fresh", "edited", "declared", "never_built"):
        (package / f"{name}.py").write_text("")
    for name in ("fresh", "edited", "declared"):
        (package / f"{name}{SUFFIX}").write_bytes(b"")
    (package / "declared.pxd").write_text("")  # its C types, edited after the build
    os.utime(package / "fresh.py", ns=(10**18, 10**18))
    os.utime(package / f"fresh{SUFFIX}", ns=(10**18 + 1, 10**18 + 1))
    os.utime(package / f"edited{SUFFIX}", ns=(10**18, 10**18))
    os.utime(package / "edited.py", ns=(10**18 + 1, 10**18 + 1))
    os.utime(package / "declared.py", ns=(10**18, 10**18))
    os.utime(package / f"declared{SUFFIX}", ns=(10**18 + 1, 10**18 + 1))
    os.utime(package / "declared.pxd", ns=(10**18 + 2, 10**18 + 2))
    assert streams.stale(["pkg.fresh", "pkg.edited", "pkg.declared", "pkg.never_built"],
                         tmp_path) == ["pkg.edited", "pkg.declared"]


def test_a_checkout_edited_since_its_build_runs_the_edited_source(tmp_path: Path) -> None:
    # a copy of the checkout, its build included, with one hot module edited after the build
    shutil.copytree(ROOT / "streams", tmp_path / "streams",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    edited = tmp_path / "streams" / "core" / "routing.py"
    built = streams.compiled_of(edited)
    assert built is not None
    edited.write_text(edited.read_text() + "\nEDITED = True\n")
    os.utime(edited, ns=(built.stat().st_mtime_ns + 10**9,) * 2)
    shown = _where("streams.core.routing", tmp_path)
    assert shown.splitlines()[0] == str(edited)
    assert "older than their source run interpreted" in shown
    assert "streams.core.routing" in shown
    untouched = _where("streams.core.stage_machine", tmp_path).splitlines()[0]
    assert untouched.endswith(SUFFIX)

    # an installed package (no pyproject.toml beside it) is never checked: its files do not change
    (tmp_path / "pyproject.toml").unlink()
    assert _where("streams.core.routing", tmp_path).splitlines()[0].endswith(SUFFIX)


_CORE_RUN = """
import hashlib, sys
import streams
from streams.core.calendar import MS_PER_DAY
from streams.core.definitions.compiler import compile_definitions
from streams.core.definitions.loader import load_file
from streams.core.definitions.review import next_review
from streams.core.lead_state import LeadState, dumps, loads
from streams.core.stage_machine import StageMachine
from streams.tools.generator import Generator
from streams.wire.validation import InvalidEvent, validate

compiled = compile_definitions(load_file(sys.argv[1]))
machine = StageMachine(compiled)
end = 20_000 * MS_PER_DAY
digest = hashlib.sha256()
states = {}
for n, event in enumerate(Generator(compiled, 7).history(500, 400, end)):
    if n % 11 == 0:
        event = {**event, "amount": -1.0}  # refused by validation
    try:
        validate(event, end)
    except InvalidEvent as exc:
        digest.update(str(exc.reason).encode())
        continue
    state = states.get(event["lead_id"])
    if state is None:
        state = states[event["lead_id"]] = LeadState(event["lead_id"])
    for _ in range(2 if n % 7 == 0 else 1):  # every seventh redelivered: counted once
        signals = []
        digest.update(str(machine.fold(state, event, signals)).encode() + repr(signals).encode())
    if n % 5 == 0:  # written and read back, as the worker does
        states[event["lead_id"]] = state = loads(dumps(state))
for lead, state in sorted(states.items()):
    digest.update(dumps(state) + repr(state.recent_changes).encode())
    digest.update(repr(next_review(compiled, state.history, end + MS_PER_DAY)).encode())
print(len(states), digest.hexdigest())
"""


@pytest.mark.parametrize("definitions", ["definitions/lead-stages.yaml",
                                         "definitions/examples/fit-and-intent.yaml"])
def test_compiled_and_interpreted_hot_modules_give_the_same_states(definitions: str) -> None:
    """The declared C types (the .pxd files) change no result: the same generated history,
    with redeliveries and refused events, folded by the compiled and the interpreted modules,
    gives byte-identical states, signals, recent changes and review times."""
    runs = []
    for compiled in ("1", "0"):
        run = subprocess.run([sys.executable, "-c", _CORE_RUN, str(ROOT / definitions)],
                             cwd=ROOT, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0",
                                  "LEADSTAGE_COMPILED": compiled})
        assert run.returncode == 0, run.stderr
        runs.append(run.stdout.split())
    assert runs[0] == runs[1]
    assert int(runs[0][0]) > 400  # leads
