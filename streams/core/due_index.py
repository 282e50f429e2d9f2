"""Next-review times of the leads in each partition this worker owns, so a sweep costs as many
leads as are due, not all of them. Rebuilt from the table after every rebalance."""

from __future__ import annotations

import heapq

#: Stale heap entries allowed beyond the live ones before the heap is rebuilt (see `set`).
SLACK = 1024


class DueIndex:
    """A lead's review time moves with many of its events, and each move leaves the old entry in
    the heap until that time comes, months later for a windowed fact. So the heap is rebuilt
    from the live entries whenever it holds more than twice as many plus SLACK: its memory
    follows the leads, not the events, at an amortised O(1) per `set`."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, str]] = []
        self._due: dict[tuple[int, str], int] = {}

    def clear(self) -> None:
        self._heap.clear()
        self._due.clear()

    def set(self, partition: int, lead_id: str, at: int | None) -> None:
        key = (partition, lead_id)
        due = self._due
        if at is None:
            due.pop(key, None)
        elif due.get(key) != at:
            due[key] = at
            heapq.heappush(self._heap, (at, partition, lead_id))
        else:
            return
        if len(self._heap) > 2 * len(due) + SLACK:
            self._heap = [(t, p, lead) for (p, lead), t in due.items()]
            heapq.heapify(self._heap)

    def pop_due(self, now: int, limit: int) -> list[tuple[int, str]]:
        """Up to `limit` (partition, lead) whose review time has come; stale entries skipped."""
        out: list[tuple[int, str]] = []
        heap, due = self._heap, self._due
        while heap and heap[0][0] <= now and len(out) < limit:
            at, partition, lead_id = heapq.heappop(heap)
            if due.get((partition, lead_id)) == at:
                del due[(partition, lead_id)]
                out.append((partition, lead_id))
        return out

    def __len__(self) -> int:
        return len(self._due)

    @property
    def held(self) -> int:
        """Entries the heap holds, stale ones included."""
        return len(self._heap)
