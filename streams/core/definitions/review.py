"""When can time alone change a lead's stage? (the sweep's next review time, pure)

Between events, facts change only when an event leaves a `count ... within` window, and a rule
changes only when a comparison that reads `now` or `today` flips. Each such comparison has one
side that grows with time and one that does not, so its truth flips at most once: a binary search
finds the first instant it differs (`today` only changes at UTC midnight, so those search days).
Comparisons with time on both sides fall back to a conservative re-check. An early review is
harmless (it finds nothing and reschedules); a late one would delay a change, so none is late.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from functools import partial
from typing import Any

from streams.core.calendar import MAX_DAY, MIN_DAY, MS_PER_DAY, MS_PER_HOUR, add_months_ms
from streams.core.definitions.compiler import CompiledDefinitions, SwitchGroup, TimePair
from streams.core.definitions.model import Duration
from streams.core.lead_history import LeadHistory

HORIZON_DAYS = 20 * 366  # decision dates and windows further out than this are not tracked
#: Switch days remembered per switch group (compiler.SwitchGroup): `today` comparisons read a few
#: values (a decision date), so leads share them and the binary searches run once per value.
SWITCH_DAYS_KEPT = 50_000
#: The days a switch day is searched in: every day `today` can be (the clock and occurred_at
#: are within 1970..2199), and the horizon after the last.
_FIRST_DAY, _LAST_DAY = MIN_DAY - 1, MAX_DAY + HORIZON_DAYS


def _window_start(now: int, months: int, millis: int) -> int:
    """The start of a window of `months` and `millis` that ends at `now`."""
    return (add_months_ms(now, -months) if months else now) - millis


def _first_true(pred: Callable[[int], bool], lo: int, hi: int) -> int | None:
    """Smallest x in (lo, hi] with pred(x), for pred monotone (False...False True...True)."""
    if not pred(hi):
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if pred(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _window_passed(within: Duration, oldest: int, t: int) -> bool:
    return _window_start(t, within.months, within.millis) >= oldest


def _flips_on_day(pair: TimePair, facts: tuple[Any, ...], before: bool, day: int) -> bool:
    return pair.holds(facts, day * MS_PER_DAY) != before


def _flips_at(pair: TimePair, facts: tuple[Any, ...], before: bool, t: int) -> bool:
    return pair.holds(facts, t) != before


def _oldest_inside(times: list[int] | None, start: int, now: int) -> int | None:
    """The first of sorted `times` inside the window (start, now], or None."""
    if not times:
        return None
    i = bisect_right(times, start)
    if i == len(times) or times[i] > now:
        return None
    return times[i]


def window_exits(compiled: CompiledDefinitions, history: LeadHistory, now: int) -> int | None:
    """The first instant after `now` at which an event leaves a windowed count."""
    best: int | None = None
    summaries = history.activities
    for within, months, millis, values_key, activities in compiled.windows:
        start = _window_start(now, months, millis)
        # a windowed sum or maximum changes when one of its values leaves, as a count does
        if values_key is not None:
            oldest = _oldest_inside(history.value_times.get(values_key), start, now)
        else:
            oldest = None
            for activity in activities:
                summary = summaries.get(activity)
                if summary is not None:
                    at = _oldest_inside(summary.recent, start, now)
                    if at is not None and (oldest is None or at < oldest):
                        oldest = at
        if oldest is None:
            continue
        # the window's start grows with time, so the oldest event inside leaves it first
        if not months:
            exit_at: int | None = oldest + millis
        else:
            span = (within.max_days + 1) * MS_PER_DAY
            exit_at = _first_true(partial(_window_passed, within, oldest), now, int(now + span))
        if exit_at is not None and (best is None or exit_at < best):
            best = exit_at
    return best


def _switch_day(pair: TimePair, facts: tuple[Any, ...]) -> int | None:
    """The day on which a monotone `today` comparison changes its truth (at most once, so one
    day for all time), or None if it does not between _FIRST_DAY and _LAST_DAY."""
    first = pair.holds(facts, _FIRST_DAY * MS_PER_DAY)
    return _first_true(partial(_flips_on_day, pair, facts, first), _FIRST_DAY, _LAST_DAY)


def _switch_days(compiled: CompiledDefinitions, g: int, group: SwitchGroup,
                 facts: tuple[Any, ...]) -> tuple[int, ...]:
    """The days on which a switch group's comparisons change their truth, sorted. They depend
    only on the values the group reads, so leads share them: memoised by those."""
    key = group.read_values(facts)
    days = compiled.switch_days[g]
    found = days.get(key)
    if found is not None:
        return found
    pairs = compiled.time_pairs
    switches = []  # a loop, not a comprehension: no function call (compiled with Cython)
    for i in group.members:
        day = _switch_day(pairs[i], facts)
        if day is not None:
            switches.append(day)
    found = tuple(sorted(switches))
    if len(days) >= SWITCH_DAYS_KEPT:
        days.clear()  # values spread wider than this: start again
    days[key] = found
    return found


def next_review(compiled: CompiledDefinitions, history: LeadHistory, now: int,
                facts: tuple[Any, ...] | None = None) -> int | None:
    """The earliest instant after `now` at which the lead's stage may change without events."""
    if facts is None:
        facts = compiled.compute_facts(history, now)
    best = window_exits(compiled, history, now)
    today = now // MS_PER_DAY
    if _FIRST_DAY < today <= MAX_DAY:
        for g, group in enumerate(compiled.switch_groups):
            for day in _switch_days(compiled, g, group, facts):
                if day > today:  # the group's first switch after today is its only candidate
                    if day <= today + HORIZON_DAYS:
                        at = day * MS_PER_DAY
                        if best is None or at < best:
                            best = at
                    break
        searched = compiled.searched_pairs
    else:
        searched = compiled.time_pairs  # a clock outside 1970..2199: no day is remembered
    for pair in searched:
        if not pair.monotone:
            at = (today + 1) * MS_PER_DAY if pair.today_only else now + MS_PER_HOUR
        elif pair.today_only:  # searched from today
            before = pair.holds(facts, now)
            flip = _first_true(partial(_flips_on_day, pair, facts, before), today,
                               today + HORIZON_DAYS)
            if flip is None:
                continue
            at = flip * MS_PER_DAY
        else:
            before = pair.holds(facts, now)
            found = _first_true(partial(_flips_at, pair, facts, before),
                                now, now + HORIZON_DAYS * MS_PER_DAY)
            if found is None:
                continue
            at = found
        if best is None or at < best:
            best = at
    return best
