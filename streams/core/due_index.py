"""Next-review times of the leads in each partition this worker owns, so a sweep costs as many
leads as are due, not all of them. Rebuilt from the table after every rebalance."""

from __future__ import annotations

import heapq


class DueIndex:
    def __init__(self) -> None:
        self._heap: list[tuple[int, int, str]] = []
        self._due: dict[tuple[int, str], int] = {}

    def clear(self) -> None:
        self._heap.clear()
        self._due.clear()

    def set(self, partition: int, lead_id: str, at: int | None) -> None:
        key = (partition, lead_id)
        if at is None:
            self._due.pop(key, None)
            return
        if self._due.get(key) != at:
            self._due[key] = at
            heapq.heappush(self._heap, (at, partition, lead_id))

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
