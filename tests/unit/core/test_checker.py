"""Checker verdicts; every counterexample is replayed through the compiled evaluator."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import z3
from z3.z3util import get_vars

from streams.core.calendar import MS_PER_DAY, add_months, parse_date
from streams.core.definitions.checker import Counterexample, _Calendar, _Encoder, check
from streams.core.definitions.compiler import compile_definitions
from streams.core.definitions.loader import load_file, load_text
from streams.core.definitions.model import Definitions, Type
from tests.unit.core.definitions_helpers import definitions_yaml


def replay(d: Definitions, example: Counterexample) -> tuple[bool, tuple[bool, ...]]:
    """(in population, which stages hold) for the counterexample's fact values."""
    values = []
    for fact in d.facts.values():
        raw = example.facts[fact.name]
        if raw == "none":
            values.append(None)
        elif fact.type is Type.DATE:
            values.append(parse_date(raw))
        elif fact.type is Type.TIMESTAMP:
            values.append(int(dt.datetime.fromisoformat(raw).timestamp() * 1000))
        elif fact.type is Type.DECIMAL:
            values.append(float(raw))
        else:
            values.append(int(raw))
    now = int(dt.datetime.fromisoformat(example.now).timestamp() * 1000)
    return compile_definitions(d).all_stages(tuple(values), now)


def test_default_definitions_are_valid():
    result = check(load_file("definitions/lead-stages.yaml"))
    assert result.valid, [f.as_dict() for f in result.findings]


def test_overlap_is_found_with_a_real_counterexample():
    d = load_text(definitions_yaml([("cold", "contacts >= 1"), ("warm", "interest_signals >= 1")]))
    [finding] = check(d).findings
    assert finding.kind == "overlap" and finding.stages == ["cold", "warm"]
    population, holds = replay(d, finding.counterexample)
    assert population and holds == (True, True)


def test_gap_is_found_with_a_real_counterexample():
    d = load_text(definitions_yaml([("cold", "interest_signals == 0"),
                                    ("hot", "decision_date is not none")]))
    findings = {f.kind: f for f in check(d).findings}
    assert set(findings) == {"gap", "overlap"}  # no interest but a decision date: both hold
    finding = findings["gap"]
    population, holds = replay(d, finding.counterexample)
    assert population and holds == (False, False)
    assert int(finding.counterexample.facts["interest_signals"]) >= 1


def test_unreachable_stage():
    d = load_text(definitions_yaml([
        ("cold", "interest_signals == 0"), ("warm", "interest_signals >= 1"),
        ("hot", "interest_signals >= 1 and contacts == 0")]))
    kinds = {(f.kind, tuple(f.stages)) for f in check(d).findings}
    assert ("unreachable", ("hot",)) in kinds


def test_windowed_count_never_exceeds_all_time_count():
    # Only impossible leads have more interest in 90 days than ever: no overlap may be claimed.
    facts = """\
facts:
  contacts:
    count: [CONTACTED]
  interest_signals:
    count: [PRICING_VIEWED]
    within: 90 days
  interest_ever:
    count: [PRICING_VIEWED, DEMO_REQUESTED]
"""
    d = load_text(definitions_yaml([("cold", "interest_signals <= interest_ever"),
                                    ("warm", "interest_signals > interest_ever")], facts=facts))
    assert [(f.kind, f.stages) for f in check(d).findings] == [("unreachable", ["warm"])]


def test_latest_required_field_is_none_exactly_without_events():
    facts = """\
facts:
  contacts:
    count: [CONTACTED]
  timelines:
    count: [DECISION_TIMELINE_PROVIDED]
  decision_date:
    latest: DECISION_TIMELINE_PROVIDED.decision_by
"""
    d = load_text(definitions_yaml([("a", "timelines == 0"), ("b", "decision_date is not none")],
                                   facts=facts))
    assert check(d).valid


def test_first_is_never_after_last_or_now():
    facts = """\
facts:
  contacts:
    count: [CONTACTED]
  first_contact:
    first: CONTACTED
  last_contact:
    last: CONTACTED
"""
    d = load_text(definitions_yaml([("a", "first_contact <= last_contact <= now")],
                                   facts=facts))
    assert check(d).valid


def test_variant_a_literal_has_the_twelve_months_gap():
    d = load_file("definitions/examples/variant-a-literal.yaml")
    findings = {f.kind: f for f in check(d).findings}
    gap = findings["gap"]
    example = gap.counterexample
    now_day = parse_date(example.now[:10])
    assert example.facts["decision_date"] == dt.date.fromordinal(
        dt.date(1970, 1, 1).toordinal() + add_months(now_day, 12)).isoformat()
    population, holds = replay(d, example)
    assert population and not any(holds)


def test_variant_b_is_rejected_as_subjective():
    out = subprocess.run([sys.executable, "-m", "streams.tools.cli", "definitions", "check",
                          "definitions/examples/variant-b-subjective.yaml", "--format", "json"],
                         capture_output=True, text=True)
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    assert not doc["valid"]
    assert all("opinion" in p["message"] for p in doc["problems"])
    assert len(doc["problems"]) == 4


def test_cli_check_default_exit_0_and_table():
    out = subprocess.run([sys.executable, "-m", "streams.tools.cli", "definitions", "check"],
                         capture_output=True, text=True, env={"COLUMNS": "200", "PATH": ""})
    assert out.returncode == 0, out.stderr
    for word in ("cold", "warm", "hot", "deciding_soon", "Valid"):
        assert word in out.stdout


def test_cli_check_json_lists_every_problem(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(definitions_yaml([("cold", "contacts >= 1"), ("warm", "contacts >= 1"),
                                     ("hot", "contacts == 0")]))
    out = subprocess.run([sys.executable, "-m", "streams.tools.cli", "definitions", "check",
                          str(bad), "--format", "json"], capture_output=True, text=True)
    assert out.returncode == 1
    kinds = sorted(p["kind"] for p in json.loads(out.stdout)["problems"])
    assert kinds == ["overlap", "unreachable"]


def test_z3_calendar_agrees_with_python_on_month_ends_and_leap_days():
    for text, months in [("2026-08-31", 6), ("2027-08-29", 6), ("2028-02-29", 12),
                         ("2026-01-31", 1), ("2026-12-15", -13), ("2099-06-30", 6)]:
        hard: list = []
        cal = _Calendar(hard)
        day = z3.Int("day")
        result = z3.Int("result")
        s = z3.Solver()
        s.add(*[], day == parse_date(text))
        expr = cal.add_months(day, months)
        s.add(*hard, result == expr)
        assert s.check() == z3.sat
        assert s.model()[result].as_long() == add_months(parse_date(text), months), text


def test_one_day_is_taken_apart_into_year_month_and_day_once():
    """A month window (`now - 3 months`) and a `today + 6 months` comparison both add months
    to today. Two decompositions of that one day left the solver to find that they are equal:
    the default definitions with `within: 1 year` took 14.7 s of the 20 s budget, 0.6 s with
    one."""
    text = DEFAULT_TEXT.replace("within: 90 days", "within: 3 months")
    enc = _Encoder(load_text(text))
    names = {str(v) for v in get_vars(z3.And(*enc.hard))}
    # a day taken apart is named _y<i>, _m<i>, _d<i>; months added to it, _y2_<i> and _m2_<i>
    assert len({n for n in names if re.fullmatch(r"_y\d+", n)}) == 1
    assert len({n for n in names if n.startswith("_y2_")}) == 2  # 3 months back, 6 ahead
    assert check(load_text(text)).valid


DEFAULT_TEXT = (Path(__file__).resolve().parents[3] / "definitions" / "lead-stages.yaml"
                ).read_text()


def test_z3_calendar_shares_a_day_and_still_agrees_with_python():
    """Months added to one day twice and back, through the shared decomposition."""
    hard: list = []
    cal = _Calendar(hard)
    day, later, earlier = z3.Int("day"), z3.Int("later"), z3.Int("earlier")
    six_ahead, three_back = cal.add_months(day, 6), cal.add_months(day, -3)
    assert len({str(v) for v in get_vars(z3.And(*hard)) if re.fullmatch(r"_y\d+", str(v))}) == 1
    for text in ("2026-08-31", "2028-02-29", "2027-03-31", "2026-05-31"):
        s = z3.Solver()
        s.add(*hard, day == parse_date(text), later == six_ahead, earlier == three_back)
        assert s.check() == z3.sat
        assert s.model()[later].as_long() == add_months(parse_date(text), 6), text
        assert s.model()[earlier].as_long() == add_months(parse_date(text), -3), text


def test_z3_calendar_on_timestamps_keeps_the_time_of_day():
    hard: list = []
    cal = _Calendar(hard)
    ts, result = z3.Int("ts"), z3.Int("r")
    start = parse_date("2026-08-31") * MS_PER_DAY + 13 * 3_600_000 + 5
    s = z3.Solver()
    expr = cal.add_months_ms(ts, -3)
    s.add(*hard, ts == start, result == expr)
    assert s.check() == z3.sat
    assert s.model()[result].as_long() == parse_date("2026-05-31") * MS_PER_DAY + 13 * 3_600_000 + 5
