"""Next-review times of the leads in each partition this worker owns, so a sweep costs as many
leads as are due, not all of them. Rebuilt from the table after every rebalance."""

from __future__ import annotations

import heapq

#: Stale heap entries allowed beyond the live ones before the heap is rebuilt (see `set`).
SLACK = 1024


class DueIndex:
    """A lead's review time moves with many of its events, nearly always later (a 90-day
    window's exit moves with each interest signal). A later time adds no heap entry: the
    lead's earlier entry stays as a lower bound, and when it comes due with the lead's time
    since moved on, it is pushed again at that time. So the heap holds one entry per lead
    however often its time moves later, and a `set` is a dict write; pushing each move instead
    (a stale entry each) made the heap rebuild itself, in one pass, every time it reached twice
    the leads: 0.9 s of the event loop at 1.4 million leads. A time moved earlier, or cleared,
    does leave a stale entry; the heap is rebuilt from the live entries whenever it holds more
    than twice as many plus SLACK, so its memory follows the leads, not the events.

    The times are kept per partition, by lead id: a (partition, lead) key tuple per lead would
    be about a third of the index's memory, which a worker holds for every lead with a review
    time (bench/README.md)."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, str]] = []
        self._due: dict[int, dict[str, int]] = {}
        self._live = 0

    def clear(self) -> None:
        self._heap.clear()
        self._due.clear()
        self._live = 0

    def set(self, partition: int, lead_id: str, at: int | None) -> None:
        leads = self._due.get(partition)
        if at is None:  # no review time: forget the lead's, if it had one
            if leads is None or leads.pop(lead_id, None) is None:
                return
            self._live -= 1
        else:
            if leads is None:
                leads = self._due[partition] = {}
            held = leads.get(lead_id)
            leads[lead_id] = at
            if held is not None:
                if at >= held:  # its entry, at `held` or earlier, still comes due first
                    return
            else:
                self._live += 1
            heapq.heappush(self._heap, (at, partition, lead_id))
        if len(self._heap) > 2 * self._live + SLACK:
            self._heap = [(t, p, lead) for p, by_lead in self._due.items()
                          for lead, t in by_lead.items()]
            heapq.heapify(self._heap)

    def pop_due(self, now: int, limit: int) -> list[tuple[int, str]]:
        """Up to `limit` (partition, lead) whose review time has come; stale entries skipped."""
        out: list[tuple[int, str]] = []
        heap, due = self._heap, self._due
        while heap and heap[0][0] <= now and len(out) < limit:
            at, partition, lead_id = heapq.heappop(heap)
            leads = due.get(partition)
            if leads is None:
                continue
            current = leads.get(lead_id)
            if current == at:
                del leads[lead_id]
                self._live -= 1
                out.append((partition, lead_id))
            elif current is not None and current > at:  # moved later since: due then
                heapq.heappush(heap, (current, partition, lead_id))
        return out

    def __len__(self) -> int:
        return self._live

    @property
    def held(self) -> int:
        """Entries the heap holds, stale ones included."""
        return len(self._heap)
