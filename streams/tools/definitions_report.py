"""Renders a definitions check for people (rich tables) and machines (one JSON document)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from streams.core.definitions.checker import CheckResult
from streams.core.definitions.loader import Problem
from streams.tools.terminal import shown


def as_json(path: str, result: CheckResult | None, problems: list[Problem]) -> dict[str, Any]:
    doc: dict[str, Any] = {"file": path, "valid": result is not None and result.valid}
    doc["problems"] = [{"kind": "definition", "line": p.line, "message": p.message}
                       for p in problems]
    if result is not None:
        d = result.definitions
        doc["version"] = d.version
        doc["problems"] += [f.as_dict() for f in result.findings]
        doc["stages"] = [{"name": s.name, "meaning": s.meaning, "when": s.when.source}
                         for s in d.stages]
        doc["population"] = d.population.source if d.population else None
        doc["properties"] = [{"name": p.name, "type": p.type.value, "from": p.source,
                              "attribute": p.attribute, "values": p.values, "min": p.min,
                              "max": p.max} for p in d.properties.values()]
    return doc


def print_report(console: Console, path: str, result: CheckResult | None,
                 problems: list[Problem]) -> None:
    if problems:
        console.print(f"[bold red]{shown(path)}: {len(problems)} problem(s); the file is "
                      "rejected[/]")
        for p in problems:
            console.print(f"  {shown(p)}", highlight=False)
        return
    assert result is not None
    d = result.definitions
    if result.valid:
        table = Table(title=f"{shown(path)}: version {d.version}, agreed by "
                            f"{shown(d.agreed_by['marketing'])} and {shown(d.agreed_by['sales'])}")
        table.add_column("stage", style="bold")
        table.add_column("meaning")
        table.add_column("rule", style="cyan")
        for stage in d.stages:
            table.add_row(shown(stage.name), shown(stage.meaning), shown(stage.when.source))
        console.print(table)
        if d.properties:
            console.print("Properties from systems of record: " + "; ".join(
                f"{shown(p.name)} ({shown(p.describe())})" for p in d.properties.values()),
                highlight=False)
        population = shown(d.population.source) if d.population else "every lead"
        console.print(f"[green]Valid:[/] every lead in the population ({population}) is in "
                      "exactly one stage at every moment; every stage is reachable.",
                      highlight=False)
        return
    console.print(f"[bold red]{shown(path)}: {len(result.findings)} problem(s); the file is "
                  "rejected[/]")
    for finding in result.findings:
        console.print(f"\n[bold]{finding.kind}[/]: {shown(finding.message)}", highlight=False)
        example = finding.counterexample
        if example is None:
            continue
        table = Table(title="for example, this lead", title_justify="left")
        table.add_column("fact")
        table.add_column("value")
        table.add_row("now", example.now)
        for name, value in example.facts.items():
            table.add_row(shown(name), shown(value))
        console.print(table)
