"""The synthetic history is realistic enough to exercise every metric, and what-if is exact."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from streams.core.definitions.compiler import compile_definitions
from streams.core.definitions.loader import load_file
from streams.core.lead_state import LeadState
from streams.core.signals import Assessment
from streams.core.stage_machine import StageMachine
from streams.core.whatif import diff
from streams.tools.generator import Generator, as_json
from streams.wire.json_lines import parse_line

COMPILED = compile_definitions(load_file("definitions/lead-stages.yaml"))
END = 1_795_000_000_000
LEADSTAGE = str(Path(sys.executable).parent / "leadstage")


def history(leads: int = 600, seed: int = 5) -> list[dict]:
    return list(Generator(COMPILED, seed).history(leads, 120, END))


def test_generated_events_are_valid_json_lines_and_deterministic():
    events = history()
    assert events == history()  # same seed, same history
    for e in events:
        parse_line(json.dumps(as_json(e)))  # raises if any line would be rejected
    kinds = Counter(e["activity"] for e in events)
    for kind in ("CONTACTED", "PAGE_VIEWED", "CONTENT_DOWNLOADED", "WEBINAR_ATTENDED",
                 "PRICING_VIEWED", "DEMO_REQUESTED", "DECISION_TIMELINE_PROVIDED",
                 "BUDGET_CONFIRMED", "STAGE_ASSESSED", "SALES_ACCEPTED", "DEAL_WON", "DEAL_LOST"):
        assert kinds[kind] > 0, kind
    assert all(e["occurred_at"] <= END for e in events)


def test_marketing_is_more_optimistic_than_sales():
    machine = StageMachine(COMPILED)
    states: dict[str, LeadState] = {}
    verdicts: dict[str, Counter] = {"MARKETING": Counter(), "SALES": Counter()}
    for event in sorted(history(2000, 9), key=lambda e: (e["lead_id"], e["occurred_at"])):
        state = states.setdefault(event["lead_id"], LeadState(event["lead_id"]))
        signals: list = []
        machine.apply(state, parse_line(json.dumps(as_json(event))), signals)
        for s in signals:
            if isinstance(s, Assessment):
                verdicts[s.team][s.verdict] += 1

    def overrated(team: str) -> float:
        return verdicts[team]["overrated"] / sum(verdicts[team].values())

    assert overrated("MARKETING") > 2 * overrated("SALES")


def test_whatif_moves_match_an_independent_evaluation_of_each_lead():
    from streams.core.definitions.loader import load_text
    from streams.core.lead_history import LeadHistory

    text = Path("definitions/lead-stages.yaml").read_text()
    shorter = compile_definitions(load_text(text.replace("within: 90 days", "within: 14 days")))
    events = [parse_line(json.dumps(as_json(e))) for e in history()]
    result = diff(COMPILED, shorter, events)
    at = max(e["occurred_at"] for e in events)
    for (old, new), leads in result.moves.items():
        for lead in leads:
            h = LeadHistory()
            for e in events:
                if e["lead_id"] == lead and e["activity"] != "STAGE_ASSESSED":
                    h.apply(e)
            assert (COMPILED.evaluate(h, at)[0], shorter.evaluate(h, at)[0]) == (old, new)
    assert sum(len(v) for v in result.moves.values()) == result.leads
    assert result.changed()  # a shorter window does move some leads


def test_whatif_sets_the_properties_each_file_declares():
    fit = compile_definitions(load_file("definitions/examples/fit-and-intent.yaml"))
    events = [parse_line(json.dumps(as_json(e))) for e in history(400)]
    assert any(e["attributes"].get("crm_segment") for e in events)  # the CRM's firmographics
    result = diff(COMPILED, fit, events)
    at = max(e["occurred_at"] for e in events)
    by_lead: dict[str, list[dict]] = {}
    for e in events:
        by_lead.setdefault(e["lead_id"], []).append(e)
    for (_, new), leads in result.moves.items():
        for lead in leads:  # what the worker's machine makes of the same events
            state, machine = LeadState(lead), StageMachine(fit)
            for e in by_lead[lead]:
                machine.fold(state, e, [])
            assert fit.evaluate(state.history, at)[0] == new
    reached = Counter(new for (_, new), leads in result.moves.items() for _ in leads)
    assert reached["nurture"] and (reached["cold"] + reached["warm"] + reached["hot"])


def test_cli_generate_and_diff(tmp_path):
    out = tmp_path / "events.jsonl"
    subprocess.run([LEADSTAGE, "generate", "--leads", "400", "--seed", "3", "--out", str(out)],
                   check=True, capture_output=True)
    new = tmp_path / "new.yaml"
    text = Path("definitions/lead-stages.yaml").read_text()
    new.write_text(text.replace("within: 90 days", "within: 14 days")
                   .replace("version: 1", "version: 2"))
    result = subprocess.run([LEADSTAGE, "definitions", "diff", "definitions/lead-stages.yaml",
                             str(new), "--events", str(out), "--format", "json", "--show-leads"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    moves = {(r["from"], r["to"]): r for r in doc["pairs"]}
    assert doc["moved"] > 0 and ("warm", "cold") in moves  # a shorter window cools leads
    assert all(old == new or (old, new) == ("warm", "cold") for old, new in moves)
    assert sum(r["leads"] for r in doc["pairs"]) == doc["leads"]
    assert moves[("warm", "cold")]["leads"] == len(moves[("warm", "cold")]["lead_ids"])


def test_diff_refuses_a_file_that_fails_the_checker(tmp_path):
    out = tmp_path / "events.jsonl"
    out.write_text("")
    result = subprocess.run([LEADSTAGE, "definitions", "diff", "definitions/lead-stages.yaml",
                             "definitions/examples/variant-a-literal.yaml", "--events", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "gap" in result.stderr
