"""Compiles type-checked definitions once into plain Python functions (generated source).

Generated code beats a tree-walking interpreter by an order of magnitude: one function computes
every fact from a LeadHistory, another picks the stage from the facts. Dates are day numbers and
timestamps epoch milliseconds throughout, so comparisons are integer comparisons.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, NamedTuple

from streams.core.calendar import (
    MS_PER_DAY,
    add_months,
    add_months_ms,
    format_date,
    format_timestamp,
)
from streams.core.definitions import expressions as ex
from streams.core.definitions.model import Definitions, Duration, Fact, Type
from streams.core.lead_history import Activity, LeadHistory

NOT_IN_POPULATION = -1
NO_STAGE = -2  # impossible for definitions that pass the checker


def _window_count(summaries: dict[str, Activity], activities: Sequence[str], start: int,
                  end: int) -> int:
    """Events with occurred_at in (start, end]."""
    total = 0
    for activity in activities:
        summary = summaries.get(activity)
        if summary is not None:
            times = summary.recent
            total += bisect_right(times, end) - bisect_right(times, start)
    return total


def _count(summaries: dict[str, Activity], activities: Sequence[str]) -> int:
    total = 0
    for activity in activities:
        summary = summaries.get(activity)
        if summary is not None:
            total += summary.count
    return total


def _first(summaries: dict[str, Activity], activities: Sequence[str]) -> int | None:
    times = [s.first_at for s in map(summaries.get, activities) if s is not None]
    return min(times) if times else None


def _last(summaries: dict[str, Activity], activities: Sequence[str]) -> int | None:
    times = [s.last_at for s in map(summaries.get, activities) if s is not None]
    return max(times) if times else None


def _window_values(times: dict[str, list[int]], amounts: dict[str, list[float]], key: str,
                   start: int, end: int) -> list[float]:
    """Values of the events of `key` with occurred_at in (start, end]."""
    at = times.get(key)
    if not at:
        return []
    return amounts[key][bisect_right(at, start):bisect_right(at, end)]


def _window_sum(times: dict[str, list[int]], amounts: dict[str, list[float]], key: str,
                start: int, end: int) -> float | None:
    values = _window_values(times, amounts, key, start, end)
    return sum(values) if values else None


def _window_max(times: dict[str, list[int]], amounts: dict[str, list[float]], key: str,
                start: int, end: int) -> float | None:
    values = _window_values(times, amounts, key, start, end)
    return max(values) if values else None


def _add_months_none(value: int | None, months: int, ms: bool) -> int | None:
    if value is None:
        return None
    return add_months_ms(value, months) if ms else add_months(value, months)


_RUNTIME = {
    "_window_count": _window_count,
    "_count": _count,
    "_first": _first,
    "_last": _last,
    "_add_months": add_months,
    "_add_months_ms": add_months_ms,
    "_add_months_none": _add_months_none,
    "_window_sum": _window_sum,
    "_window_max": _window_max,
}


class _Codegen:
    def __init__(self, definitions: Definitions) -> None:
        self.d = definitions
        self.fact_var = {name: f"f_{name}" for name in definitions.value_names}

    def expr(self, n: ex.Node, as_ms: bool = False) -> str:
        """Python source for a value node; dates become ms when `as_ms` (for mixed compares)."""
        code = self._value(n)
        if as_ms and n.type is Type.DATE:
            return f"({code} * {MS_PER_DAY})" if not n.nullable else \
                f"(None if {code} is None else {code} * {MS_PER_DAY})"
        return code

    def _value(self, n: ex.Node) -> str:
        if isinstance(n, ex.Name):
            return f"c_{n.name}" if n.is_condition else self.fact_var[n.name]
        if isinstance(n, ex.Now):
            return "now"
        if isinstance(n, ex.Today):
            return "today"
        if isinstance(n, ex.Number):
            return repr(n.value)
        if isinstance(n, ex.DateLit):
            return str(n.day)
        if isinstance(n, ex.TextLit):
            return repr(n.value)
        if isinstance(n, ex.BoolLit):
            return repr(n.value)
        if isinstance(n, ex.Arith):
            return self._arith(n)
        if isinstance(n, ex.Compare | ex.IsNone | ex.BoolOp | ex.Not):
            return self.boolean(n)
        raise TypeError(f"cannot compile {type(n).__name__}")  # pragma: no cover

    def _arith(self, n: ex.Arith) -> str:
        if not isinstance(n.right, ex.DurationLit):  # numbers: + - and * by a literal
            left, right = self.expr(n.left), self.expr(n.right)
            if not n.nullable:
                return f"({left} {n.op} {right})"
            guards = " or ".join(f"{c} is None" for c, o in ((left, n.left), (right, n.right))
                                 if o.nullable)
            return f"(None if {guards} else {left} {n.op} {right})"
        duration = n.right.duration
        sign = 1 if n.op == "+" else -1
        to_ms = n.type is Type.TIMESTAMP and n.left.type is Type.DATE
        left = self.expr(n.left, as_ms=to_ms)
        ms = n.type is Type.TIMESTAMP
        code = left
        if duration.months:
            months = sign * duration.months
            code = (f"_add_months_none({code}, {months}, {ms})" if n.nullable
                    else f"_add_months{'_ms' if ms else ''}({code}, {months})")
        if duration.millis:
            step = duration.millis if ms else duration.millis // MS_PER_DAY
            delta = f"{'+' if sign > 0 else '-'} {step}"
            code = f"(None if {code} is None else {code} {delta})" if n.nullable \
                else f"({code} {delta})"
        return code

    def boolean(self, n: ex.Node) -> str:
        if isinstance(n, ex.Name):
            # a boolean property alone means "is true" (none is not true)
            return f"({self.fact_var[n.name]} is True)" if n.is_property else f"c_{n.name}"
        if isinstance(n, ex.BoolLit):
            return repr(n.value)
        if isinstance(n, ex.InList):
            code = self.expr(n.operand)
            listed = ", ".join(self.expr(i) for i in n.items)
            test = f"{code} {'not in' if n.negated else 'in'} ({listed},)"
            return f"({code} is not None and {test})" if n.operand.nullable else f"({test})"
        if isinstance(n, ex.Not):
            return f"(not {self.boolean(n.item)})"
        if isinstance(n, ex.BoolOp):
            return "(" + f" {n.op} ".join(self.boolean(i) for i in n.items) + ")"
        if isinstance(n, ex.IsNone):
            return f"({self.expr(n.operand)} is {'not ' if n.negated else ''}None)"
        if isinstance(n, ex.Compare):
            as_ms = any(o.type is Type.TIMESTAMP for o in n.operands)
            codes = [self.expr(o, as_ms=as_ms) for o in n.operands]
            guards = [f"{c} is not None" for c, o in zip(codes, n.operands, strict=True)
                      if o.nullable]
            pairs = [f"{a} {op} {b}" for a, op, b in zip(codes, n.ops, codes[1:], strict=False)]
            return "(" + " and ".join(guards + pairs) + ")"
        raise TypeError(f"not a true/false expression: {type(n).__name__}")  # pragma: no cover

    def fact(self, f: Fact) -> str:
        acts = tuple(f.activities)
        var = self.fact_var[f.name]
        if f.kind == "count" and f.within is None:
            if len(acts) == 1:
                return (f"_a = activities.get({acts[0]!r})\n"
                        f"    {var} = 0 if _a is None else _a.count")
            return f"{var} = _count(activities, {acts!r})"
        if f.kind == "count":
            assert f.within is not None
            start = _window_start(f.within)
            return f"{var} = _window_count(activities, {acts!r}, {start}, now)"
        if f.kind == "latest":
            return (f"_a = activities.get({acts[0]!r})\n"
                    f"    {var} = None if _a is None else _a.latest.get({f.field!r})")
        if f.kind in ("sum", "max"):
            key = f.values_key
            if f.within is None:
                return (f"_t = totals.get({key!r})\n"
                        f"    {var} = None if _t is None else _t[{0 if f.kind == 'sum' else 1}]")
            start = _window_start(f.within)
            return f"{var} = _window_{f.kind}(vtimes, vamounts, {key!r}, {start}, now)"
        if len(acts) == 1:
            return (f"_a = activities.get({acts[0]!r})\n"
                    f"    {var} = None if _a is None else _a.{f.kind}_at")
        return f"{var} = _{f.kind}(activities, {acts!r})"

    def time_pairs(self) -> list[tuple[str, bool, bool, tuple[int, ...]]]:
        """(code, reads only `today`, exactly one side depends on time, the indices of the
        values it reads) for every comparison of two operands where time appears; == and != are
        split into <= and >=, each monotone."""
        pairs: list[tuple[str, bool, bool, tuple[int, ...]]] = []
        index = {name: i for i, name in enumerate(self.d.value_names)}
        trees = [r.tree for r in self.d.conditions.values()]
        trees += [self.d.population.tree] if self.d.population else []
        trees += [s.when.tree for s in self.d.stages]

        def visit(n: ex.Node) -> None:
            if isinstance(n, ex.Compare):
                for a, op, b in zip(n.operands, n.ops, n.operands[1:], strict=False):
                    ta, tb = _reads_time(a), _reads_time(b)
                    if not (ta or tb):
                        continue
                    today_only = not (_reads_now(a) or _reads_now(b))
                    # operands of a comparison are values: facts and properties, not conditions
                    reads = tuple(index[n] for n in dict.fromkeys(
                        [*ex.names_in(a), *ex.names_in(b)]))
                    for split in (("<=", ">=") if op in ("==", "!=") else (op,)):
                        pair = ex.Compare(operands=[a, b], ops=[split])
                        pairs.append((self.boolean(pair), today_only, ta != tb, reads))
            for child in ex.children(n):
                visit(child)

        for tree in trees:
            visit(tree)
        return pairs

    def source(self) -> str:
        d = self.d
        fact_names = list(d.value_names)
        vars_ = ", ".join(self.fact_var[n] for n in fact_names)
        tuple_expr = f"({vars_},)" if fact_names else "()"
        lines = [
            "def compute_facts(h, now):",
            "    activities = h.activities",
        ]
        if any(f.kind in ("sum", "max") for f in d.facts.values()):
            lines.append("    totals = h.totals; vtimes = h.value_times; "
                         "vamounts = h.value_amounts")
        if d.properties:
            lines.append("    props = h.properties")
        lines += [f"    {self.fact(f)}" for f in d.facts.values()]
        for name in d.properties:
            lines += [f"    _p = props.get({name!r})",
                      f"    {self.fact_var[name]} = None if _p is None else _p[1]"]
        lines.append(f"    return {tuple_expr}")
        unpack = f"    {vars_}, = facts" if fact_names else "    pass"
        head = ["    today = now // 86400000"]
        head += [f"    c_{name} = {self.boolean(rule.tree)}"
                 for name, rule in d.conditions.items()]
        population = self.boolean(d.population.tree) if d.population else "True"
        lines += ["", "def stage_of(facts, now):", unpack, *head,
                  f"    if not {population}:", f"        return {NOT_IN_POPULATION}"]
        for i, stage in enumerate(d.stages):
            lines += [f"    if {self.boolean(stage.when.tree)}:", f"        return {i}"]
        lines.append(f"    return {NO_STAGE}")
        stage_codes = ", ".join(self.boolean(s.when.tree) for s in d.stages)
        lines += ["", "def all_stages(facts, now):", unpack, *head,
                  f"    return {population}, ({stage_codes},)"]
        for i, (code, *_) in enumerate(self.time_pairs()):
            lines += ["", f"def _pair{i}(facts, now):", unpack,
                      "    today = now // 86400000", f"    return {code}"]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class TimePair:
    """One comparison that reads the clock: its truth at time t, for the next review time."""

    holds: Callable[[tuple[Any, ...], int], bool]
    today_only: bool  # changes only at UTC midnight
    monotone: bool  # one side depends on time, so its truth flips at most once
    #: indices of the fact and property values it reads
    reads: tuple[int, ...] = ()
    #: facts -> the values it reads (its memo key in review._switch_day): an itemgetter, a
    #: tenth of the cost of building the tuple in Python
    read_values: Callable[[tuple[Any, ...]], Any] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "read_values",
                           itemgetter(*self.reads) if self.reads else _no_values)


def _no_values(facts: tuple[Any, ...]) -> tuple[()]:
    return ()


class SwitchGroup(NamedTuple):
    """The monotone `today` comparisons that read the same values (`today <= decision_date` and
    `decision_date <= today + 6 months` both read the decision date): their switch days depend
    on those values alone, so review.next_review looks them up once for the group, not once per
    comparison."""

    #: facts -> the values they read: the memo key
    read_values: Callable[[tuple[Any, ...]], Any]
    #: indexes into CompiledDefinitions.time_pairs
    members: tuple[int, ...]


class Window(NamedTuple):
    """A windowed fact: its window, and the series whose times leave it."""

    within: Duration
    months: int
    millis: int
    #: the "ACTIVITY.field" whose value times it reads (a sum or maximum), or None: a count
    values_key: str | None
    activities: tuple[str, ...]


#: (rule text, conditions spelled out, fact and property names read, whether it mentions today)
_ReasonPlan = tuple[str, tuple[str, ...], tuple[str, ...], bool]


@dataclass(frozen=True)
class CompiledDefinitions:
    definitions: Definitions
    source: str
    compute_facts: Callable[[LeadHistory, int], tuple[Any, ...]]
    stage_of: Callable[[tuple[Any, ...], int], int]
    all_stages: Callable[[tuple[Any, ...], int], tuple[bool, tuple[bool, ...]]]
    time_pairs: tuple[TimePair, ...] = ()
    #: stage -> what `reason` shows, filled on first use
    _plans: dict[str | None, _ReasonPlan] = field(default_factory=dict, compare=False,
                                                  repr=False)
    #: the monotone `today` comparisons, grouped by the values they read
    switch_groups: tuple[SwitchGroup, ...] = field(init=False, compare=False, repr=False)
    #: the other comparisons, searched at every review (review.next_review)
    searched_pairs: tuple[TimePair, ...] = field(init=False, compare=False, repr=False)
    #: per switch group: the values its members read -> the days their truths switch, sorted
    #: (review.next_review)
    switch_days: tuple[dict[Any, tuple[int, ...]], ...] = field(init=False, compare=False,
                                                                repr=False)
    #: (name, its type's formatter) of every fact and property in value order: a change
    #: formats them all, and picking the formatter per value read four Enum members (about
    #: 90 ns each on Python 3.11)
    _formatters: tuple[tuple[str, Callable[[Any], str]], ...] = field(
        init=False, compare=False, repr=False)

    #: every windowed fact as review.window_exits reads it, worked out once rather than from
    #: the definitions at every evaluation
    windows: tuple[Window, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        d = self.definitions
        object.__setattr__(self, "_formatters", tuple(
            (name, _formatter(d.value_type(name))) for name in d.value_names))
        object.__setattr__(self, "windows", tuple(
            Window(f.within, f.within.months, f.within.millis,
                   f.values_key if f.kind in ("sum", "max") else None, tuple(f.activities))
            for f in d.facts.values() if f.within is not None))
        by_reads: dict[tuple[int, ...], list[int]] = {}
        for i, pair in enumerate(self.time_pairs):
            if pair.monotone and pair.today_only:
                by_reads.setdefault(pair.reads, []).append(i)
        object.__setattr__(self, "switch_groups", tuple(
            SwitchGroup(self.time_pairs[members[0]].read_values, tuple(members))
            for members in by_reads.values()))
        object.__setattr__(self, "searched_pairs", tuple(
            pair for pair in self.time_pairs if not (pair.monotone and pair.today_only)))
        object.__setattr__(self, "switch_days", tuple({} for _ in by_reads))

    def forget_switch_days(self) -> None:
        """Empty the switch days' memo (review.next_review fills it again as it goes)."""
        for days in self.switch_days:
            days.clear()

    def evaluate(self, history: LeadHistory, now: int) -> tuple[str | None, tuple[Any, ...]]:
        """(stage name or None when outside the population, fact values) at `now` (ms)."""
        facts = self.compute_facts(history, now)
        index = self.stage_of(facts, now)
        if index == NO_STAGE:
            raise RuntimeError("no stage holds: these definitions did not pass the checker")
        return (None if index < 0 else self.definitions.stages[index].name), facts

    def format_facts(self, facts: tuple[Any, ...]) -> dict[str, str]:
        """Every fact's and property's value, as change events and lookups show them."""
        formatters = self._formatters
        if len(facts) != len(formatters):
            raise ValueError(f"{len(facts)} values for {len(formatters)} facts and properties")
        # a loop, not a comprehension (no function call per change), and not zip(strict=True):
        # compiled, that call cost more than the whole loop without it (bench/README.md)
        shown = {}
        for (name, formatted), v in zip(formatters, facts):  # noqa: B905 (checked above)
            shown[name] = "none" if v is None else formatted(v)
        return shown

    def reason(self, stage: str | None, facts: tuple[Any, ...], now: int,
               formatted: dict[str, str] | None = None) -> str:
        """The rule that now holds, in words, with the values it read. `formatted` is
        `format_facts(facts)` if the caller has it (a change shows both): not formatted twice."""
        text, conditions, fact_names, today = self._reason_plan(stage)
        shown = list(conditions)
        if formatted is None:
            formatted = self.format_facts(facts)
        for n in fact_names:
            shown.append(f"{n} = {formatted[n]}")
        if today:
            shown.append(f"today = {format_date(now // MS_PER_DAY)}")
        return text + (f" (where {'; '.join(shown)})" if shown else "")

    def _reason_plan(self, stage: str | None) -> _ReasonPlan:
        """What `reason` shows for a stage: worked out once per stage, not once per change
        (walking the expression trees for every change is measurable on the hot path)."""
        plan = self._plans.get(stage)
        if plan is not None:
            return plan
        d = self.definitions
        if stage is None:
            rule = d.population
            text = f"not in the population: {rule.source} does not hold" if rule else "no stage"
            names = ex.names_in(rule.tree) if rule else []
        else:
            rule = next(s.when for s in d.stages if s.name == stage)
            text = f"{stage}: {rule.source}"
            names = ex.names_in(rule.tree)
        used = _expand(d, names)
        trees = [rule.tree] if rule else []
        trees += [d.conditions[n].tree for n in used if n in d.conditions]
        values = set(d.value_names)
        plan = (text, tuple(f"{n} means {d.conditions[n].source}" for n in used
                            if n in d.conditions),
                tuple(n for n in used if n in values),
                any(_mentions_today(t) for t in trees))
        self._plans[stage] = plan
        return plan


def _window_start(within: Duration) -> str:
    """Source for the start of a window ending at `now` (exclusive)."""
    start = "now"
    if within.months:
        start = f"_add_months_ms(now, {-within.months})"
    if within.millis:
        start = f"{start} - {within.millis}"
    return start


def _reads_now(node: ex.Node) -> bool:
    return isinstance(node, ex.Now) or any(_reads_now(c) for c in ex.children(node))


def _reads_time(node: ex.Node) -> bool:
    return isinstance(node, ex.Now | ex.Today) or any(_reads_time(c) for c in ex.children(node))


def _mentions_today(node: ex.Node) -> bool:
    return isinstance(node, ex.Today) or any(_mentions_today(c) for c in ex.children(node))


def _expand(d: Definitions, names: list[str]) -> list[str]:
    """Names used, with the names inside used conditions, in order."""
    out: list[str] = []

    def visit(name: str) -> None:
        if name in out:
            return
        out.append(name)
        if name in d.conditions:
            for inner in ex.names_in(d.conditions[name].tree):
                visit(inner)

    for n in names:
        visit(n)
    return out


def _decimal(value: Any) -> str:
    return repr(float(value))


def _boolean(value: Any) -> str:
    return "true" if value else "false"


def _formatter(kind: Type) -> Callable[[Any], str]:
    """How a value of this type is shown (None, "none", aside)."""
    if kind is Type.DATE:
        return format_date
    if kind is Type.TIMESTAMP:
        return format_timestamp
    if kind is Type.DECIMAL:
        return _decimal
    if kind is Type.BOOLEAN:
        return _boolean
    return str


def compile_definitions(definitions: Definitions) -> CompiledDefinitions:
    gen = _Codegen(definitions)
    source = gen.source()
    namespace: dict[str, Any] = dict(_RUNTIME)
    exec(compile(source, f"<definitions v{definitions.version}>", "exec"), namespace)
    pairs = tuple(TimePair(namespace[f"_pair{i}"], today_only, monotone, reads)
                  for i, (_, today_only, monotone, reads) in enumerate(gen.time_pairs()))
    return CompiledDefinitions(definitions, source, namespace["compute_facts"],
                               namespace["stage_of"], namespace["all_stages"], pairs)
