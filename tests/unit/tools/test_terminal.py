"""User text printed with rich: no markup injection, no raw escape sequences."""

from __future__ import annotations

import io

from rich.console import Console

from streams.core.definitions.checker import check
from streams.core.definitions.loader import load_text
from streams.tools.definitions_report import print_report
from streams.tools.terminal import printable, shown
from tests.unit.core.definitions_helpers import definitions_yaml


def test_markup_and_control_characters_are_shown_not_obeyed():
    out = io.StringIO()
    hostile = shown(chr(27) + "[31mred")
    Console(file=out, width=200).print(f"lead {shown('L-[/x] [bold]x')} and {hostile}")
    text = out.getvalue()
    assert "L-[/x] [bold]x" in text and "\x1b" not in text and "\\x1b[31mred" in text
    assert printable("a\x07b\tc\nd") == "a\\x07b\tc\nd"


def test_the_definitions_report_prints_hostile_meanings_and_signatures_literally():
    text = definitions_yaml([("cold", "contacts >= 1")]).replace(
        "The cold stage.", "\"Cold \\e[2J[/bold] stage.\"").replace(
        "Head of Sales", "\"[red]Sales\\e]0;owned\\a\"")
    definitions = load_text(text)
    out = io.StringIO()
    print_report(Console(file=out, width=300), "f.yaml", check(definitions), [])
    report = out.getvalue()
    assert "\x1b" not in report and "\x07" not in report
    assert "[/bold]" in report and "[red]Sales" in report
