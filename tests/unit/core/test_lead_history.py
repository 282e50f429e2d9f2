from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.core.calendar import MS_PER_DAY
from streams.core.lead_history import (
    DEDUP_HORIZON_MS,
    RECENT_CAP,
    RETENTION_MS,
    SEEN_CAP,
    LeadHistory,
)

T0 = 1_790_000_000_000


def latest(h: LeadHistory, activity: str) -> tuple[int, str, dict]:
    summary = h.activities[activity]
    return summary.latest_at, summary.latest_id, summary.latest


def ev(i: int | str, activity: str = "PAGE_VIEWED", at: int = T0, **extra: object) -> dict:
    return {"event_id": str(i), "occurred_at": at, "activity": activity, **extra}


def test_duplicates_count_once():
    h = LeadHistory()
    assert h.apply(ev(1)) is True
    assert h.apply(ev(1, at=T0 + 5)) is False
    assert list(h.activities) == ["PAGE_VIEWED"] and h.activities["PAGE_VIEWED"].count == 1
    assert h.activities["PAGE_VIEWED"].recent == [T0]


def test_out_of_order_events_are_placed_by_occurred_at():
    h = LeadHistory()
    h.apply(ev(1, at=T0 + 10))
    h.apply(ev(2, at=T0))
    h.apply(ev(3, at=T0 + 5))
    pages = h.activities["PAGE_VIEWED"]
    assert pages.recent == [T0, T0 + 5, T0 + 10]
    assert (pages.first_at, pages.last_at) == (T0, T0 + 10)
    assert h.max_occurred_at == T0 + 10


def test_latest_is_by_occurred_at_not_arrival():
    h = LeadHistory()
    h.apply(ev("new", "BUDGET_CONFIRMED", at=T0 + 10, amount=5.0, currency="EUR"))
    h.apply(ev("old", "BUDGET_CONFIRMED", at=T0, amount=9.0))
    assert latest(h, "BUDGET_CONFIRMED") == (T0 + 10, "new", {"amount": 5.0, "currency": "EUR"})


@given(st.permutations([("a", 0), ("b", 0), ("c", 7), ("d", 7), ("e", 3)]))
def test_latest_breaks_a_tie_by_event_id_in_any_arrival_order(order):
    """The latest of events at the same instant is the one with the greatest id, so replicas
    that saw them in different orders agree."""
    h = LeadHistory()
    for event_id, offset in order:
        h.apply(ev(event_id, "BUDGET_CONFIRMED", at=T0 + offset, amount=float(offset)))
    assert latest(h, "BUDGET_CONFIRMED") == (T0 + 7, "d", {"amount": 7.0})


def test_memory_stays_bounded_for_a_very_busy_lead():
    h = LeadHistory()
    for i in range(SEEN_CAP + 3 * RECENT_CAP):
        h.apply(ev(i, at=T0 + i * 1000))
    assert len(h.activities["PAGE_VIEWED"].recent) <= RECENT_CAP
    assert len(h.seen) <= SEEN_CAP
    assert h.activities["PAGE_VIEWED"].count == SEEN_CAP + 3 * RECENT_CAP  # totals stay exact


def test_prune_forgets_old_ids_and_timestamps():
    h = LeadHistory()
    h.apply(ev("old", at=T0))
    h.apply(ev("new", at=T0 + RETENTION_MS + MS_PER_DAY))
    h.prune()
    assert "old" not in h.seen and "new" in h.seen
    pages = h.activities["PAGE_VIEWED"]
    assert pages.recent == [T0 + RETENTION_MS + MS_PER_DAY]
    assert pages.count == 2 and pages.first_at == T0
    assert DEDUP_HORIZON_MS < RETENTION_MS


def test_ids_past_the_dedup_horizon_are_forgotten_as_events_arrive():
    from streams.core.lead_history import PRUNE_EVERY

    h = LeadHistory()
    for i in range(3 * PRUNE_EVERY):  # one event a day
        h.apply(ev(i, at=T0 + i * MS_PER_DAY))
    horizon_days = DEDUP_HORIZON_MS // MS_PER_DAY
    # at most the horizon's worth of ids, plus those added since the last prune
    assert len(h.seen) <= horizon_days + 1 + PRUNE_EVERY
    oldest = min(h.seen.values())
    assert oldest >= h.max_occurred_at - (horizon_days + PRUNE_EVERY) * MS_PER_DAY
    assert h.activities["PAGE_VIEWED"].count == 3 * PRUNE_EVERY


def test_an_id_inside_another_is_not_taken_for_it():
    """The counted ids are kept in one newline-separated string: an id that is part of another,
    or of two neighbours, is still new."""
    h = LeadHistory()
    for event_id in ("ab", "c-1", "x"):
        assert h.apply(ev(event_id))
    for event_id in ("a", "b", "c", "1", "c-", "b\nc-1", "ab\nc"):
        assert h.apply(ev(event_id)), event_id
    assert not h.apply(ev("c-1")) and not h.apply(ev("b\nc-1"))
    assert "\n" not in "".join(h.seen)  # an id with the separator is kept as a digest


def test_the_oldest_id_goes_first_past_the_cap_with_its_time():
    h = LeadHistory()
    for i in range(SEEN_CAP + 2):
        h.apply(ev(i, at=T0 + i))
    seen = h.seen
    assert list(seen)[:2] == ["2", "3"] and len(seen) == SEEN_CAP
    assert all(at == T0 + int(key) for key, at in seen.items())
    assert h.apply(ev(0, at=T0))  # forgotten, so counted again
