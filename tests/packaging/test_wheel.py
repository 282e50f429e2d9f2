"""The package as users install it: a wheel in a fresh environment, away from the checkout.

The wheel must carry every subpackage, the schemas and the default definitions, and its hot
modules compiled; nothing may be read from the working directory or the repository once
installed."""

from __future__ import annotations

import importlib.machinery
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import streams
from tests.paths import REPO_ROOT


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{cmd}:\n{result.stdout}\n{result.stderr}"
    return result


def test_the_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    dist, fresh, elsewhere = tmp_path / "dist", tmp_path / "fresh", tmp_path / "elsewhere"
    elsewhere.mkdir()
    # a module an earlier build copied and the checkout has since lost (renamed or removed):
    # pip builds in the checkout, where setuptools keeps its build folder between builds
    ghost = (REPO_ROOT / "build" / f"lib.{sysconfig.get_platform()}-"
             f"{sys.implementation.cache_tag}" / "streams" / "adapters" / "renamed_since.py")
    ghost.parent.mkdir(parents=True, exist_ok=True)
    ghost.write_text("raise ImportError('a module the checkout no longer has')\n")
    try:
        run([sys.executable, "-m", "pip", "wheel", str(REPO_ROOT), "--no-deps", "-q",
             "-w", str(dist)], cwd=tmp_path)
    finally:
        ghost.unlink(missing_ok=True)
    (wheel,) = dist.glob("leadstage-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "streams/resources/schemas/LeadActivity.avsc" in names
    assert "streams/resources/definitions/lead-stages.yaml" in names
    assert {"streams/resources/connectors/hubspot.yaml",
            "streams/resources/connectors/segment.yaml",
            "streams/tools/collector/leadstage.js"} <= set(names)
    modules = sorted(n[:-3].replace("/", ".").removesuffix(".__init__") for n in names
                     if n.startswith("streams/") and n.endswith(".py"))
    source_modules = sorted(
        str(p.relative_to(REPO_ROOT))[:-3].replace("/", ".").removesuffix(".__init__")
        for p in (REPO_ROOT / "streams").rglob("*.py"))
    assert modules == source_modules  # every subpackage is in the wheel
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    compiled = sorted(n.removesuffix(suffix).replace("/", ".") for n in names
                      if n.endswith(suffix))
    assert compiled == sorted(streams.MODULES)  # the hot modules, built by Cython

    run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], cwd=tmp_path)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(fresh),
                                                     "platbase": str(fresh)}))
    # The dependencies come from the project's environment (no download in a test); the
    # project's own editable install there is not seen, because a plain path in a .pth file
    # does not run that folder's .pth files.
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    python = fresh / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
         str(wheel)], cwd=tmp_path)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADSTAGE_", "PYTHON"))}
    env["LEADSTAGE_DATA_DIR"] = str(tmp_path / "data")
    code = ("import importlib, streams\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "print(streams.__file__)\n"
            "print(sum(map(streams.running_compiled, map(importlib.import_module, "
            "streams.MODULES))))")
    where, running = run([str(python), "-c", code], cwd=elsewhere, env=env).stdout.split()
    assert Path(where).is_relative_to(fresh), where  # the wheel's copy, not the checkout's
    assert int(running) == len(streams.MODULES)

    check = run([str(fresh / "bin" / "leadstage"), "definitions", "check"], cwd=elsewhere,
                env=env)
    assert "hot" in check.stdout and "resources/definitions/lead-stages.yaml" in check.stdout

    # the collector finds its snippet and the shipped connectors inside the wheel
    code = ("from streams.adapters.settings import CollectorSettings\n"
            "from streams.tools.collector.service import _snippet\n"
            "from streams.wire.connectors import load_connectors\n"
            "folder = CollectorSettings().connectors_dir\n"
            "print(folder, sorted(load_connectors(folder)), len(_snippet()))")
    shown = run([str(python), "-c", code], cwd=elsewhere, env=env).stdout.split()
    assert Path(shown[0]).is_relative_to(fresh), shown
    assert shown[1:3] == ["['hubspot',", "'segment']"] and int(shown[3]) > 1000, shown
