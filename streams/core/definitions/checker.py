"""Proves with the z3 SMT solver that, for every lead in the population and every moment, exactly
one stage holds: no overlap, no gap, no unreachable stage (DESIGN §4).

Facts are not free variables: they are derived from per-activity event summaries, exactly as
leads accumulate them, so every counterexample is a lead that can exist:
- per activity A: n_A >= 0 events, the first and last at 2000-01-01 <= first <= last <= now;
- per window: 0 <= n_A,w <= n_A, at least one in the window iff the last one is in it, all of
  them iff the first one is; longer windows hold at least as many;
- `latest A.f` is none when there is no A event (and never none when A requires f);
- sums and maxima of amounts are >= 0 (amounts cannot be negative), none without such events,
  a windowed one never exceeds the all-time one and a maximum never exceeds its sum;
- properties range over their declared domain (text over its `values`, numbers within `min` and
  `max`) or are none; texts are compared through one numbering of every text the file names;
- calendar months and years are encoded exactly (civil-date arithmetic with leap years).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import z3

from streams.core.calendar import (
    MS_PER_DAY,
    add_months,
    format_date,
    format_timestamp,
    parse_date,
)
from streams.core.catalog import REQUIRED_FIELDS
from streams.core.definitions import expressions as ex
from streams.core.definitions.model import Definitions, Duration, Fact, Property, PropertyType, Type

MIN_DAY = parse_date("2000-01-01")
MIN_TS = MIN_DAY * MS_PER_DAY
MAX_NOW = parse_date("2090-01-01") * MS_PER_DAY  # leaves room for month arithmetic < 2100
TIMEOUT_MS = 30_000
#: All the proofs of one file together get at most this long (an adversarial file must not
#: hang the checker); past it, what is left is reported as not proved.
BUDGET_S = 20.0


@dataclass
class Counterexample:
    now: str
    facts: dict[str, str]


@dataclass
class Finding:
    kind: str  # overlap | gap | unreachable | empty-population | unknown
    stages: list[str]
    message: str
    counterexample: Counterexample | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "stages": self.stages, "message": self.message}
        if self.counterexample:
            out["counterexample"] = {"now": self.counterexample.now,
                                     "facts": self.counterexample.facts}
        return out


@dataclass
class CheckResult:
    definitions: Definitions
    findings: list[Finding] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.findings


# --- exact calendar arithmetic on z3 integers -------------------------------------------------
# Within 2000..2099 every fourth year is a leap year, which keeps the encoding linear with a single
# division; the hard constraints keep every date the solver reasons about inside that range.

_CUM_DAYS = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)


def _days_before_month(y: z3.ArithRef, m: z3.ArithRef) -> z3.ArithRef:
    cum = z3.IntVal(_CUM_DAYS[11])
    for month in range(11, 0, -1):
        cum = z3.If(m == month, _CUM_DAYS[month - 1], cum)
    return cum + z3.If(z3.And(m > 2, y % 4 == 0), 1, 0)


def _days_from_civil(y: z3.ArithRef, m: z3.ArithRef, d: z3.ArithRef) -> z3.ArithRef:
    return 365 * (y - 1970) + (y - 1969) / 4 + _days_before_month(y, m) + d - 1


def _days_in_month(y: z3.ArithRef, m: z3.ArithRef) -> z3.ArithRef:
    return z3.If(m == 2, z3.If(y % 4 == 0, 29, 28),
                 z3.If(z3.Or(m == 4, m == 6, m == 9, m == 11), 30, 31))


class _Calendar:
    """Adds calendar months to z3 day numbers and timestamps, exactly."""

    def __init__(self, hard: list[Any]) -> None:
        self.hard = hard
        self.cache: dict[tuple[str, int], z3.ArithRef] = {}
        #: a day (as z3 prints it) -> its year, month and day, taken apart once: two
        #: decompositions of one day (a month window and `today + 6 months`) left the solver to
        #: prove them equal, which took most of the proving time
        self.civil_days: dict[str, tuple[z3.ArithRef, z3.ArithRef, z3.ArithRef]] = {}

    def civil(self, day: z3.ArithRef) -> tuple[z3.ArithRef, z3.ArithRef, z3.ArithRef]:
        key = day.sexpr()
        if key not in self.civil_days:
            i = len(self.hard)
            y, m, d = z3.Int(f"_y{i}"), z3.Int(f"_m{i}"), z3.Int(f"_d{i}")
            self.hard += [y >= 1970, y <= 2099, m >= 1, m <= 12, d >= 1,
                          d <= _days_in_month(y, m), day == _days_from_civil(y, m, d)]
            self.civil_days[key] = y, m, d
        return self.civil_days[key]

    def add_months(self, day: z3.ArithRef, months: int) -> z3.ArithRef:
        key = (day.sexpr(), months)
        if key not in self.cache:
            y, m, d = self.civil(day)
            total = y * 12 + (m - 1) + months
            i = len(self.hard)
            y2, m2 = z3.Int(f"_y2_{i}"), z3.Int(f"_m2_{i}")
            self.hard += [total == y2 * 12 + (m2 - 1), m2 >= 1, m2 <= 12]
            dim = _days_in_month(y2, m2)
            self.cache[key] = _days_from_civil(y2, m2, z3.If(d > dim, dim, d))
        return self.cache[key]

    def add_months_ms(self, ts: z3.ArithRef, months: int) -> z3.ArithRef:
        day = ts / MS_PER_DAY
        return self.add_months(day, months) * MS_PER_DAY + (ts - day * MS_PER_DAY)


# --- encoding -------------------------------------------------------------------------------

@dataclass
class _Val:
    value: Any  # z3 expression, or a Python bool for booleans
    none: Any = False  # z3 Bool: the value is none


class _Encoder:
    def __init__(self, d: Definitions) -> None:
        self.d = d
        self.now = z3.Int("now")
        self.today = self.now / MS_PER_DAY
        self.hard: list[Any] = [self.now >= MIN_TS, self.now < MAX_NOW]
        self.calendar = _Calendar(self.hard)
        self.n: dict[str, z3.ArithRef] = {}
        self.first: dict[str, z3.ArithRef] = {}
        self.last: dict[str, z3.ArithRef] = {}
        self.windows: dict[tuple[str, Duration], z3.ArithRef] = {}
        self.window_start: dict[Duration, z3.ArithRef] = {}
        self.facts: dict[str, _Val] = {}
        self.conditions: dict[str, Any] = {}
        #: every text the file names (property values and literals), numbered
        self.texts: dict[str, int] = {}
        for prop in d.properties.values():
            for value in prop.values or ():
                self.text(value)
        for fact in d.facts.values():
            self.facts[fact.name] = self._fact(fact)
        for prop in d.properties.values():
            self.facts[prop.name] = self._property(prop)
        self._window_order()
        self._amount_order()
        for name, rule in d.conditions.items():
            self.conditions[name] = self.boolean(rule.tree)

    def _activity(self, a: str) -> None:
        if a in self.n:
            return
        n, first, last = z3.Int(f"n[{a}]"), z3.Int(f"first[{a}]"), z3.Int(f"last[{a}]")
        self.n[a], self.first[a], self.last[a] = n, first, last
        self.hard += [
            n >= 0,
            z3.Implies(n > 0, z3.And(first >= MIN_TS, first <= last, last <= self.now)),
            z3.Implies(n == 1, first == last),
            z3.Implies(z3.And(n > 0, first < last), n >= 2),
            # Irrelevant when there are none: pin them so models are unambiguous.
            z3.Implies(n == 0, z3.And(first == MIN_TS, last == MIN_TS)),
        ]

    def _start(self, w: Duration) -> z3.ArithRef:
        if w not in self.window_start:
            start = self.now
            if w.months:
                start = self.calendar.add_months_ms(start, -w.months)
            self.window_start[w] = start - w.millis
        return self.window_start[w]

    def _window(self, a: str, w: Duration) -> z3.ArithRef:
        key = (a, w)
        if key not in self.windows:
            nw = z3.Int(f"n[{a} within {w}]")
            n, first, last, start = self.n[a], self.first[a], self.last[a], self._start(w)
            self.windows[key] = nw
            self.hard += [
                nw >= 0, nw <= n,
                (nw >= 1) == z3.And(n > 0, last > start),
                z3.Implies(n > 0, (nw == n) == (first > start)),
            ]
        return self.windows[key]

    def _window_order(self) -> None:
        by_activity: dict[str, list[Duration]] = {}
        for a, w in self.windows:
            by_activity.setdefault(a, []).append(w)
        for a, ws in by_activity.items():
            for w1 in ws:
                for w2 in ws:
                    if w1 != w2:
                        self.hard.append(z3.Implies(self._start(w1) >= self._start(w2),
                                                    self.windows[(a, w1)] <= self.windows[(a, w2)]))

    def text(self, value: str) -> int:
        return self.texts.setdefault(value, len(self.texts))

    def _property(self, p: Property) -> _Val:
        none = z3.Bool(f"none[{p.name}]")
        if p.type is PropertyType.BOOLEAN:
            return _Val(z3.Bool(p.name), none)
        if p.type is PropertyType.NUMBER:
            v = z3.Real(p.name)
            if p.min is not None:
                self.hard.append(z3.Implies(z3.Not(none), v >= z3.RealVal(repr(p.min))))
            if p.max is not None:
                self.hard.append(z3.Implies(z3.Not(none), v <= z3.RealVal(repr(p.max))))
            return _Val(v, none)
        v = z3.Int(p.name)
        if p.type is PropertyType.TEXT:
            self.hard.append(z3.Implies(z3.Not(none), z3.Or(
                [v == self.text(value) for value in p.values or ()])))
        else:  # a date, as the dates of events
            self.hard.append(z3.Implies(z3.Not(none), z3.And(
                v >= parse_date("1971-01-01"), v < parse_date("2095-01-01"))))
        return _Val(v, none)

    def _amounts(self, f: Fact) -> _Val:
        """A sum or maximum of amounts: >= 0, none when no such event (in the window)."""
        a = f.activities[0]
        v, none = z3.Real(f.name), z3.Bool(f"none[{f.name}]")
        self.hard += [z3.Implies(self.n[a] == 0, none), z3.Implies(z3.Not(none), v >= 0)]
        if f.within is not None:
            self.hard.append(z3.Implies(self._window(a, f.within) == 0, none))
        return _Val(v, none)

    def _amount_order(self) -> None:
        """Windowed sums and maxima never exceed the all-time ones; a maximum never exceeds
        the sum over the same events."""
        summed = [f for f in self.d.facts.values() if f.kind in ("sum", "max")]
        for f1 in summed:
            for f2 in summed:
                if f1 is f2 or f1.values_key != f2.values_key:
                    continue
                v1, v2 = self.facts[f1.name], self.facts[f2.name]
                wider = f1.within is None and f2.within is not None  # f2's events are f1's
                same_events = f1.within == f2.within
                if not (wider or same_events):
                    continue
                self.hard.append(z3.Implies(v1.none, v2.none))
                if f1.kind == f2.kind or f1.kind == "sum":  # amounts are >= 0
                    self.hard.append(z3.Implies(z3.Not(v2.none), v2.value <= v1.value))

    def _fact(self, f: Fact) -> _Val:
        for a in f.activities:
            self._activity(a)
        if f.kind in ("sum", "max"):
            return self._amounts(f)
        if f.kind == "count":
            if f.within is None:
                return _Val(z3.Sum([self.n[a] for a in f.activities]))
            return _Val(z3.Sum([self._window(a, f.within) for a in f.activities]))
        if f.kind in ("first", "last"):
            v = z3.Int(f"{f.kind}({','.join(f.activities)})")
            present = [self.n[a] > 0 for a in f.activities]
            src = self.first if f.kind == "first" else self.last
            bound = [z3.Implies(p, (v <= src[a]) if f.kind == "first" else (v >= src[a]))
                     for p, a in zip(present, f.activities, strict=True)]
            self.hard += [*bound, z3.Implies(z3.Or(present), z3.Or(
                [z3.And(p, v == src[a]) for p, a in zip(present, f.activities, strict=True)]))]
            none = z3.Not(z3.Or(present))
            self.hard.append(z3.Implies(none, v == MIN_TS))
            return _Val(v, none)
        # latest ACTIVITY.field
        a = f.activities[0]
        none = z3.Bool(f"none[{f.name}]")
        v = z3.Real(f"{f.name}") if f.type is Type.DECIMAL else z3.Int(f"{f.name}")
        self.hard.append(z3.Implies(self.n[a] == 0, none))
        if (a, f.field) in REQUIRED_FIELDS:
            self.hard.append(z3.Implies(self.n[a] > 0, z3.Not(none)))
        if f.type is Type.DATE:
            self.hard.append(z3.And(v >= parse_date("1971-01-01"), v < parse_date("2095-01-01")))
        return _Val(v, none)

    # expressions

    def value(self, n: ex.Node, as_ms: bool = False) -> _Val:
        out = self._value(n)
        if as_ms and n.type is Type.DATE:
            return _Val(out.value * MS_PER_DAY, out.none)
        return out

    def _value(self, n: ex.Node) -> _Val:
        if isinstance(n, ex.Name):
            return _Val(self.conditions[n.name]) if n.is_condition else self.facts[n.name]
        if isinstance(n, ex.Now):
            return _Val(self.now)
        if isinstance(n, ex.Today):
            return _Val(self.today)
        if isinstance(n, ex.Number):
            return _Val(z3.RealVal(n.text) if isinstance(n.value, float) else z3.IntVal(n.value))
        if isinstance(n, ex.DateLit):
            return _Val(z3.IntVal(n.day))
        if isinstance(n, ex.TextLit):
            return _Val(z3.IntVal(self.text(n.value)))
        if isinstance(n, ex.BoolLit):
            return _Val(z3.BoolVal(n.value))
        if isinstance(n, ex.Arith) and not isinstance(n.right, ex.DurationLit):
            left, right = self.value(n.left), self.value(n.right)
            combined = left.value * right.value if n.op == "*" else (
                left.value + right.value if n.op == "+" else left.value - right.value)
            return _Val(combined, z3.Or(_as_bool(left.none), _as_bool(right.none)))
        if isinstance(n, ex.Arith):
            assert isinstance(n.right, ex.DurationLit)
            dur, sign = n.right.duration, (1 if n.op == "+" else -1)
            ms = n.type is Type.TIMESTAMP
            left = self.value(n.left, as_ms=ms and n.left.type is Type.DATE)
            v = left.value
            if dur.months:
                v = self.calendar.add_months_ms(v, sign * dur.months) if ms else \
                    self.calendar.add_months(v, sign * dur.months)
            if dur.millis:
                v = v + sign * (dur.millis if ms else dur.millis // MS_PER_DAY)
            return _Val(v, left.none)
        return _Val(self.boolean(n))

    def boolean(self, n: ex.Node) -> Any:
        if isinstance(n, ex.Name) and n.is_property:  # a boolean property alone: is true
            prop = self.facts[n.name]
            return z3.And(z3.Not(prop.none), prop.value)
        if isinstance(n, ex.Name):
            return self.conditions[n.name]
        if isinstance(n, ex.BoolLit):
            return z3.BoolVal(n.value)
        if isinstance(n, ex.InList):
            operand = self.value(n.operand)
            found = z3.Or([operand.value == self.value(i).value for i in n.items])
            return z3.And(z3.Not(_as_bool(operand.none)), z3.Not(found) if n.negated else found)
        if isinstance(n, ex.Not):
            return z3.Not(self.boolean(n.item))
        if isinstance(n, ex.BoolOp):
            items = [self.boolean(i) for i in n.items]
            return z3.And(items) if n.op == "and" else z3.Or(items)
        if isinstance(n, ex.IsNone):
            none = self.value(n.operand).none
            return z3.Not(none) if n.negated else none
        if isinstance(n, ex.Compare):
            as_ms = any(o.type is Type.TIMESTAMP for o in n.operands)
            vals = [self.value(o, as_ms=as_ms) for o in n.operands]
            parts = [z3.Not(v.none) for v in vals if v.none is not False]
            for a, op, b in zip(vals, n.ops, vals[1:], strict=False):
                parts.append(_OPS[op](a.value, b.value))
            return z3.And(parts)
        raise TypeError(type(n).__name__)  # pragma: no cover


def _as_bool(none: Any) -> Any:
    return z3.BoolVal(none) if isinstance(none, bool) else none


_OPS = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


# --- queries and readable counterexamples -----------------------------------------------------

class _Prover:
    def __init__(self, d: Definitions, budget_s: float = BUDGET_S) -> None:
        self.d = d
        self.budget_s = budget_s
        self.deadline = time.monotonic() + budget_s
        self.enc = _Encoder(d)
        self.population = self.enc.boolean(d.population.tree) if d.population else z3.BoolVal(True)
        self.stages = [self.enc.boolean(s.when.tree) for s in d.stages]

    def solve(self, *goal: Any, example: bool = True
              ) -> tuple[z3.CheckSatResult, Counterexample | None]:
        left_ms = int((self.deadline - time.monotonic()) * 1000)
        if left_ms <= 0:
            return z3.unknown, None
        s = z3.Solver()
        s.set("timeout", min(TIMEOUT_MS, left_ms))
        s.add(*self.enc.hard, self.population, *goal)
        verdict = s.check()
        if verdict != z3.sat or not example:
            return verdict, None
        self._tidy(s)
        return verdict, self._counterexample(s.model())

    def _try(self, s: z3.Solver, constraint: Any) -> bool:
        s.push()
        s.add(constraint)
        if s.check() == z3.sat:
            return True
        s.pop()
        return False

    def _tidy(self, s: z3.Solver) -> None:
        """Steer the model to round, readable values a person recognises (a whole year ahead,
        a whole number of months, a few events) while keeping it a counterexample."""
        enc = self.enc
        effective = self.d.effective if self.d.effective is not None else parse_date("2026-12-01")
        self._try(s, enc.now == effective * MS_PER_DAY + 12 * 3_600_000)
        s.check()
        now = s.model().eval(enc.now, model_completion=True).as_long()
        today = now // MS_PER_DAY
        for fact in self.d.facts.values():
            val = enc.facts[fact.name]
            if fact.kind == "latest" and fact.type is Type.DATE:
                ks = [12, 24, -12, *range(1, 12), *[-k for k in range(1, 12)]]
                for k in ks:
                    if self._try(s, z3.And(z3.Not(val.none), val.value == add_months(today, k))):
                        break
            elif fact.type is Type.TIMESTAMP:
                for days in (1, 7, 30, 60, 90, 120, 180, 365):
                    if self._try(s, z3.And(z3.Not(val.none), val.value == now - days * MS_PER_DAY)):
                        break
        for n in list(enc.n.values()) + list(enc.windows.values()):
            for k in range(4):
                if self._try(s, n == k):
                    break
        s.check()

    def _counterexample(self, model: z3.ModelRef) -> Counterexample:
        enc = self.enc
        now = model.eval(enc.now, model_completion=True).as_long()
        facts: dict[str, str] = {}
        by_number = {number: text for text, number in enc.texts.items()}
        for name in self.d.value_names:
            val = enc.facts[name]
            kind = self.d.value_type(name)
            if val.none is not False and z3.is_true(model.eval(val.none, model_completion=True)):
                facts[name] = "none"
                continue
            raw = model.eval(val.value, model_completion=True)
            if kind is Type.BOOLEAN:
                facts[name] = "true" if z3.is_true(raw) else "false"
            elif kind is Type.TEXT:
                number = raw.as_long()
                facts[name] = f'"{by_number[number]}"' if number in by_number else "<other text>"
            elif kind is Type.DATE:
                facts[name] = format_date(raw.as_long())
            elif kind is Type.TIMESTAMP:
                facts[name] = format_timestamp(raw.as_long())
            elif kind is Type.DECIMAL:
                facts[name] = str(float(raw.as_fraction()))
            else:
                facts[name] = str(raw.as_long())
        return Counterexample(now=format_timestamp(now), facts=facts)


def check(d: Definitions, budget_s: float = BUDGET_S) -> CheckResult:
    """Every problem of the loaded definitions, each with a concrete counterexample lead."""
    prover = _Prover(d, budget_s)
    result = CheckResult(d)
    names = list(d.stage_names)
    verdict, _ = prover.solve(example=False)
    if verdict == z3.unknown:
        result.findings.append(Finding("unknown", [], f"could not prove within "
                                                      f"{prover.budget_s:.0f} s that any lead can "
                                                      "be in the population"))
        return result
    if verdict == z3.unsat:
        result.findings.append(Finding("empty-population", [],
                                       "no lead can ever be in the population"))
        return result
    for i, name in enumerate(names):
        verdict, _ = prover.solve(prover.stages[i], example=False)
        if verdict == z3.unsat:
            result.findings.append(Finding(
                "unreachable", [name],
                f"stage `{name}` can never hold for a lead in the population"))
        elif verdict == z3.unknown:
            result.findings.append(Finding("unknown", [name], f"could not prove within "
                                           f"{prover.budget_s:.0f} s whether stage `{name}` is "
                                           "reachable"))
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            verdict, example = prover.solve(prover.stages[i], prover.stages[j])
            if verdict == z3.sat:
                result.findings.append(Finding(
                    "overlap", [names[i], names[j]],
                    f"a lead can be `{names[i]}` and `{names[j]}` at the same time", example))
            elif verdict == z3.unknown:
                result.findings.append(Finding("unknown", [names[i], names[j]],
                                               f"could not prove within {prover.budget_s:.0f} s "
                                               f"whether `{names[i]}` and `{names[j]}` overlap"))
    verdict, example = prover.solve(*[z3.Not(s) for s in prover.stages])
    if verdict == z3.sat:
        result.findings.append(Finding("gap", [], "a lead in the population can be in no stage",
                                       example))
    elif verdict == z3.unknown:
        result.findings.append(Finding("unknown", [], f"could not prove within "
                                                      f"{prover.budget_s:.0f} s that every lead "
                                                      "has a stage"))
    return result


def load_checked(path: str) -> tuple[Definitions | None, str | None]:
    """(definitions, None) when the file loads and passes every proof, else (None, report)."""
    from streams.core.definitions.loader import DefinitionsError, load_file

    try:
        result = check(load_file(path))
    except DefinitionsError as exc:
        return None, str(exc)
    if result.valid:
        return result.definitions, None
    lines = [f"{path}: the definitions fail the checker:"]
    for f in result.findings:
        example = ""
        if f.counterexample:
            values = ", ".join(f"{k}={v}" for k, v in f.counterexample.facts.items())
            example = f" (e.g. now={f.counterexample.now}, {values})"
        lines.append(f"  {f.kind}: {f.message}{example}")
    return None, "\n".join(lines)
