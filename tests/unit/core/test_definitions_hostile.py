"""The definitions checker cannot be used to hang or crash the machine: hostile files get a
problem sentence, quickly, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from streams.core.definitions.loader import DefinitionsError, load_file, load_text
from tests.paths import REPO_ROOT

BASE = (REPO_ROOT / "definitions" / "lead-stages.yaml").read_text()
# nine aliases of nine aliases of ...: 9**9 strings once expanded
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n"
    for p, n in zip("abcdefgh", "bcdefghi", strict=True))


@pytest.mark.parametrize(("text", "words"), [
    (BOMB + BASE.replace("version: 1 ", "version: *i "), "anchors and aliases"),
    (BASE.replace("Head of Sales", "Head\x00of Sales"), "not valid YAML: unacceptable character"),
    (BASE.replace("effective: 2026-12-01", "effective: 0000-01-01"), "year 0 is out of range"),
    (BASE.replace("version: 1 ", "version: " + "9" * 5000 + " "), "cannot be read"),
    (BASE + "x: " + "[" * 5000 + "]" * 5000 + "\n", "more than 32 deep"),
    (BASE.replace("when: deciding_soon\n", "when: " + "not " * 45 + "deciding_soon\n"),
     "nested more than 40 levels"),
    (BASE.replace("today + 6 months", "today" + " + 1 days" * 1000), "longer than 2000"),
    (BASE + "#" + "x" * 300_000 + "\n", "larger than 256 KiB"),
])
def test_hostile_files_are_refused_in_words_and_quickly(text, words):
    started = time.perf_counter()
    with pytest.raises(DefinitionsError) as caught:
        load_text(text)
    assert words in str(caught.value)
    assert time.perf_counter() - started < 3


def test_reading_stops_at_the_size_limit():
    started = time.perf_counter()
    with pytest.raises(DefinitionsError, match="larger than 256 KiB"):
        load_file("/dev/zero")
    assert time.perf_counter() - started < 3


def test_the_command_line_gives_no_traceback(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB + BASE.replace("version: 1 ", "version: *i "))
    out = subprocess.run([sys.executable, "-m", "streams.tools.cli", "definitions", "check",
                          str(bomb)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stdout + out.stderr
    assert "anchors and aliases" in out.stdout
