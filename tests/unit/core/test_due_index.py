"""The index of review times the worker sweeps: what comes due, in order, and bounded memory."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.due_index import SLACK, DueIndex


def test_leads_come_due_in_time_order_and_only_at_their_latest_time() -> None:
    index = DueIndex()
    index.set(0, "a", 300)
    index.set(1, "b", 100)
    index.set(0, "c", 200)
    index.set(0, "a", 150)  # moved earlier: its 300 entry is stale
    index.set(0, "c", None)  # no review any more
    assert index.pop_due(99, 10) == []
    assert index.pop_due(150, 10) == [(1, "b"), (0, "a")]
    assert index.pop_due(10_000, 10) == []  # a's stale 300 and c's 200 are skipped
    assert len(index) == 0


def test_a_lead_without_a_review_time_adds_nothing_to_the_index() -> None:
    """Most updates leave a lead with no review time; clearing one the index never held (in a
    partition it has not seen either) must not leave an empty entry behind."""
    index = DueIndex()
    for partition in range(8):
        index.set(partition, "L1", None)
    assert index._due == {} and index.held == 0 and len(index) == 0


def test_a_sweep_takes_at_most_its_limit_and_leaves_the_rest_due() -> None:
    index = DueIndex()
    for i in range(5):
        index.set(0, f"L{i}", 10 + i)
    assert index.pop_due(100, 3) == [(0, "L0"), (0, "L1"), (0, "L2")]
    assert index.pop_due(100, 3) == [(0, "L3"), (0, "L4")]


def test_a_lead_rescheduled_at_every_event_does_not_grow_the_heap() -> None:
    """A live worker that never rebalances: one lead's review time moves 100,000 times (as a
    90-day window's exit does at each interest signal); the stale entries are dropped."""
    index = DueIndex()
    for lead in range(100):
        index.set(lead % 8, f"L{lead}", 1_000)
    for event in range(100_000):
        index.set(3, "L3", 2_000 + event)
        assert index.held <= 2 * len(index) + SLACK + 1
    assert len(index) == 100
    due = index.pop_due(101_999, 1_000)
    assert len(due) == 100 and due[-1] == (3, "L3")  # its latest time, 101,999, came last


def test_a_review_time_moved_later_adds_no_heap_entry_and_still_comes_due_then() -> None:
    """The common move (a window's exit at each interest signal) costs a dict write: pushing
    each one made the heap rebuild itself in one pass whenever it reached twice the leads,
    0.9 s of the event loop at 1.4 million leads (bench/README.md)."""
    index = DueIndex()
    for lead in range(1_000):
        index.set(lead % 8, f"L{lead}", 1_000 + lead)
    for event in range(50_000):
        lead = event % 1_000
        index.set(lead % 8, f"L{lead}", 2_000 + event)
    assert index.held == len(index) == 1_000  # one entry a lead, none stale
    # the old entries come due at their old times and go back in at the leads' new ones
    assert index.pop_due(1_999, 10_000) == []
    assert index.held == 1_000
    assert index.pop_due(2_000 + 49_000 + 499, 10_000) == [  # each at its latest time, 51,000 +
        (lead % 8, f"L{lead}") for lead in range(500)]      # its number, in that order
    assert index.pop_due(2_000 + 49_999, 10_000) == [
        (lead % 8, f"L{lead}") for lead in range(500, 1_000)]
    assert len(index) == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["set", "pop"]), st.integers(0, 2),
                          st.sampled_from(["a", "b", "c", "d"]),
                          st.one_of(st.none(), st.integers(0, 50))), max_size=300))
def test_the_index_agrees_with_a_plain_map_of_review_times(ops: list) -> None:
    """Whatever the sequence of reschedules and sweeps (with the heap rebuilt along the way),
    a sweep returns exactly the leads whose latest review time has come, earliest first."""
    import streams.core.due_index as module

    index = DueIndex()
    model: dict[tuple[int, str], int] = {}
    saved, module.SLACK = module.SLACK, 2  # rebuild often
    try:
        for op, partition, lead, at in ops:
            if op == "set":
                index.set(partition, lead, at)
                if at is None:
                    model.pop((partition, lead), None)
                else:
                    model[(partition, lead)] = at
            else:
                now = at if at is not None else 25
                expected = sorted(((t, p, lead_id) for (p, lead_id), t in model.items()
                                   if t <= now))
                assert index.pop_due(now, 1_000) == [(p, lead_id) for _, p, lead_id in expected]
                for _, p, lead_id in expected:
                    del model[(p, lead_id)]
            assert len(index) == len(model)
            assert index.held <= 2 * len(model) + 2 + 1
    finally:
        module.SLACK = saved


def test_the_index_holds_a_lead_in_under_170_bytes_besides_its_id() -> None:
    """Memory per lead (tracemalloc, deterministic for a Python version): a worker holds every
    lead with a review time, a million and more (bench/README.md). Keyed by (partition, lead)
    tuples it took about 200 bytes; per partition by lead id, about 135."""
    import tracemalloc

    leads = 20_000
    ids = [f"L-{i:06d}" for i in range(leads)]
    tracemalloc.start()
    try:
        index = DueIndex()
        for i, lead in enumerate(ids):
            index.set(i % 8, lead, 1_800_000_000_000 + i * 7_919)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(index) == leads
    assert held / leads < 170
