"""A lead's accumulated activity: what every fact kind needs, bounded however long a lead lives.

Facts are computed from this summary, never by replaying a lead's events:
- all-time counts, first and last occurred_at per activity;
- the occurred_at of recent events per activity (for windowed counts), kept for RETENTION_MS
  behind the latest event and at most RECENT_CAP per activity;
- the objective fields of the most recent event per activity (by occurred_at, not arrival);
- per numeric field of an activity ("BUDGET_CONFIRMED.amount"): the sum, maximum and number of
  every event that carried it, and the (occurred_at, value) of recent ones (for windowed sums
  and maxima), kept like activity times;
- the properties systems of record set (DESIGN §4.1), each with the occurred_at it holds as of;
- event ids seen within the de-duplication horizon (at most SEEN_CAP; an id longer than
  SEEN_KEY_CHARS, not ASCII, or with a newline, is kept as a 16-character digest of it).

Those caps bound a lead's state however hostile its producer (lead_state.MAX_STATE_BYTES): a
lead past them loses its oldest ids or activity times, and `trimmed` says which, for a metric.

Events are plain dicts with `occurred_at` in epoch milliseconds and dates (`decision_by`) as days
since 1970-01-01, as the codec produces them.
"""

from __future__ import annotations

import base64
import hashlib
from bisect import bisect_right, insort
from struct import Struct
from typing import Any, ClassVar

import msgspec

from streams.core.calendar import MS_PER_DAY
from streams.core.catalog import SUMMED

#: Windows are at most one year (the loader enforces it); keep a month more for safety.
RETENTION_MS = 400 * MS_PER_DAY
RECENT_CAP = 500
DEDUP_HORIZON_MS = 30 * MS_PER_DAY
SEEN_CAP = 2000
SEEN_KEY_CHARS = 40
PRUNE_EVERY = 64
TRIM_EVENT_IDS, TRIM_ACTIVITY_TIMES = "event_ids", "activity_times"


#: an occurred_at as LeadHistory.seen_at keeps it
_TIME = Struct("<q")
_pack_time = _TIME.pack


def seen_key(event_id: str) -> str:
    """The id as kept for de-duplication: itself when short ASCII without a newline (the
    separator of LeadHistory.seen_ids), else "#" and a digest."""
    if len(event_id) <= SEEN_KEY_CHARS and event_id.isascii() and "\n" not in event_id:
        return event_id
    digest = hashlib.blake2b(event_id.encode(errors="surrogatepass"), digest_size=12).digest()
    return "#" + base64.b64encode(digest).decode()
#: Fields of the latest event per activity that facts may read (objective ones only).
KEPT_FIELDS = ("decision_by", "amount", "currency")
#: "ACTIVITY.field" whose sums and maxima facts may read (catalog.SUMMED).
SUMMED_KEYS = frozenset(f"{activity}.{name}" for name, activities in SUMMED.items()
                        for activity in activities)


class Activity(msgspec.Struct, array_like=True, gc=False):
    """What a lead's history keeps of one activity, stored as one MessagePack array: a state
    is decoded for nearly every event, and one record per activity decodes in fewer objects
    than the five maps keyed by activity that lead state format 6 kept (bench/README.md).
    Not tracked by the cycle collector: it holds only numbers, text and their containers."""

    count: int
    first_at: int
    last_at: int
    #: occurred_at of recent events, sorted: RETENTION_MS behind the lead's latest event and
    #: at most RECENT_CAP (empty once every event is older)
    recent: list[int]
    #: the most recent event, by occurred_at then event_id: when, its id, and its KEPT_FIELDS
    latest_at: int
    latest_id: str
    latest: dict[str, Any]


class LeadHistory(msgspec.Struct, array_like=True, dict=True):
    """Stored as a MessagePack array of these fields in this order (lead_state.FORMAT): the
    state is decoded straight into this class, with no copying."""

    #: activity -> its summary, in the order the lead's activities first came
    activities: dict[str, Activity] = {}
    #: the ids (seen_key) counted within the de-duplication horizon, in arrival order, each
    #: between newlines: one string, not a map, so reading a state builds no object per id
    #: (a map of them took a quarter of a bench state's decoding); `in` finds one
    seen_ids: str = "\n"
    #: their occurred_at, in the same order, 8 bytes each (little-endian)
    seen_at: bytes = b""
    max_occurred_at: int = 0
    #: "ACTIVITY.field" -> [sum, max, events] of every event that carried the field
    totals: dict[str, list[Any]] = {}
    #: "ACTIVITY.field" -> occurred_at of recent events that carried it, sorted, and their values
    value_times: dict[str, list[int]] = {}
    value_amounts: dict[str, list[Any]] = {}
    #: property -> (occurred_at it holds as of, value; None once cleared)
    properties: dict[str, tuple[int, Any]] = {}
    #: bounds hit since the owner last looked (TRIM_*): kept in the instance's __dict__ once set
    #: (dict=True), so it is never stored
    trimmed: ClassVar[tuple[str, ...]] = ()

    def _hit(self, part: str) -> None:
        self.__dict__["trimmed"] = (*self.trimmed, part)

    def take_trimmed(self) -> tuple[str, ...]:
        """The bounds hit since the last call (TRIM_*), forgotten once taken."""
        parts: tuple[str, ...] = self.trimmed  # the instance's, else the class's ()
        if parts:  # nearly never: reading __dict__ would make one for every history
            del self.__dict__["trimmed"]
        return parts

    @property
    def seen(self) -> dict[str, int]:
        """id (seen_key) -> occurred_at, in arrival order: built from seen_ids and seen_at."""
        times = [at for (at,) in _TIME.iter_unpack(self.seen_at)]
        return dict(zip(self.seen_ids[1:-1].split("\n"), times, strict=True)) if times else {}

    def counted(self, key: str) -> bool:
        """Whether the id of seen_key `key` was counted already."""
        return f"\n{key}\n" in self.seen_ids

    def is_duplicate(self, event_id: str) -> bool:
        return self.counted(seen_key(event_id))

    def mark_seen(self, event_id: str, at: int, key: str | None = None) -> None:
        """Count an id once without folding its event in (opinions). `key`: its seen_key, if
        the caller has it."""
        self._remember(seen_key(event_id) if key is None else key, at)

    def _remember(self, key: str, at: int) -> int:
        """Count the id in; returns how many are kept."""
        ids = f"{self.seen_ids}{key}\n"  # one new string, not two
        times = self.seen_at + _pack_time(at)
        if len(times) > 8 * SEEN_CAP:
            ids, times = ids[ids.index("\n", 1):], times[8:]
            self._hit(TRIM_EVENT_IDS)
        self.seen_ids, self.seen_at = ids, times
        return len(times) >> 3

    def apply(self, event: dict[str, Any], key: str | None = None) -> bool:
        """Fold one event in; False (and no change) if its event_id was already counted. `key`:
        the id's seen_key, if the caller has it."""
        if key is None:
            key = seen_key(event["event_id"])
        if self.counted(key):
            return False
        self.fold_new(event, key)
        return True

    def fold_new(self, event: dict[str, Any], key: str) -> None:
        """Fold in an event whose id (seen_key `key`) the caller found not counted yet."""
        event_id: str = event["event_id"]
        at: int = event["occurred_at"]
        activity: str = event["activity"]
        if self._remember(key, at) % PRUNE_EVERY == 0:
            self.prune()  # keep the de-duplication horizon, not just the cap
        # each field read once: this runs for every event, and a struct's attribute is a lookup
        latest_at = self.max_occurred_at
        if at > latest_at:
            self.max_occurred_at = latest_at = at
        horizon = latest_at - RETENTION_MS
        activities = self.activities
        summary = activities.get(activity)
        if summary is None:
            activities[activity] = Activity(1, at, at, [at] if at > horizon else [], at,
                                            event_id, _kept(event))
        else:
            summary.count += 1
            if at < summary.first_at:
                summary.first_at = at
            if at > summary.last_at:
                summary.last_at = at
            if at > horizon:
                times = summary.recent
                insort(times, at)
                if times[0] <= horizon or len(times) > RECENT_CAP:
                    if len(times) > RECENT_CAP:
                        self._hit(TRIM_ACTIVITY_TIMES)
                    self._trim(times, horizon)
            # (at, event_id) > the latest's, without building the two tuples
            newest = summary.latest_at
            if at > newest or (at == newest and event_id > summary.latest_id):
                summary.latest_at, summary.latest_id = at, event_id
                summary.latest = _kept(event)
        amount = event.get("amount")
        if amount is not None:
            values_key = f"{activity}.amount"
            if values_key in SUMMED_KEYS:
                self._add_value(values_key, at, float(amount), horizon)

    def _add_value(self, key: str, at: int, value: float, horizon: int) -> None:
        total = self.totals.get(key)
        if total is None:
            self.totals[key] = [value, value, 1]
        else:
            total[0] += value
            total[2] += 1
            if value > total[1]:
                total[1] = value
        if at <= horizon:
            return
        times = self.value_times.get(key)
        if times is None:
            self.value_times[key], self.value_amounts[key] = [at], [value]
            return
        amounts = self.value_amounts[key]
        i = bisect_right(times, at)
        times.insert(i, at)
        amounts.insert(i, value)
        if times[0] <= horizon or len(times) > RECENT_CAP:
            if len(times) > RECENT_CAP:
                self._hit(TRIM_ACTIVITY_TIMES)
            before = len(times)
            self._trim(times, horizon)
            del amounts[:before - len(times)]

    def set_property(self, name: str, at: int, value: Any) -> bool:
        """Hold `value` (None clears) as of `at`, unless a newer value is held already."""
        current = self.properties.get(name)
        if current is not None and at < current[0]:
            return False  # a late older value never replaces a newer one
        self.properties[name] = (at, value)
        return True

    @staticmethod
    def _trim(times: list[int], horizon: int) -> None:
        keep_from = 0
        while keep_from < len(times) and times[keep_from] <= horizon:
            keep_from += 1
        keep_from = max(keep_from, len(times) - RECENT_CAP)
        del times[:keep_from]

    def prune(self) -> None:
        """Forget event ids past the de-duplication horizon and timestamps past retention."""
        dedup_horizon = self.max_occurred_at - DEDUP_HORIZON_MS
        seen = self.seen
        if seen and min(seen.values()) < dedup_horizon:
            self.keep_seen({k: v for k, v in seen.items() if v >= dedup_horizon})
        horizon = self.max_occurred_at - RETENTION_MS
        for summary in self.activities.values():
            self._trim(summary.recent, horizon)
        for key, times in list(self.value_times.items()):
            before = len(times)
            self._trim(times, horizon)
            del self.value_amounts[key][:before - len(times)]
            if not times:
                del self.value_times[key], self.value_amounts[key]


    def keep_seen(self, seen: dict[str, int]) -> None:
        """Keep these ids (seen_key -> occurred_at, in arrival order) as the counted ones."""
        self.seen_ids = "\n" + "".join(f"{key}\n" for key in seen)
        self.seen_at = b"".join(map(_pack_time, seen.values()))


def _kept(event: dict[str, Any]) -> dict[str, Any]:
    """The fields of an event that facts may read as its activity's latest (KEPT_FIELDS)."""
    kept = {}  # a loop, not a comprehension: no function call per event
    for f in KEPT_FIELDS:
        value = event.get(f)
        if value is not None:
            kept[f] = value
    return kept
