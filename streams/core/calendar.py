"""Calendar arithmetic on plain integers: dates are days since 1970-01-01, timestamps are UTC
milliseconds since the epoch. Months and years are calendar months and years (a day past the end
of the target month clamps to its last day: 2026-08-31 + 6 months = 2027-02-28)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

MS_PER_DAY = 86_400_000
MS_PER_HOUR = 3_600_000
_EPOCH = dt.date(1970, 1, 1)
_ORDINAL_EPOCH = _EPOCH.toordinal()
#: The window every date in events and definitions lies in (README "Input limits"). With offsets
#: of at most MAX_OFFSET_YEARS on top, every date the worker computes stays far inside Python's
#: years 1..9999, so no evaluation can fail on calendar arithmetic.
MIN_DAY = 0  # 1970-01-01
MAX_DAY = dt.date(2199, 12, 31).toordinal() - _ORDINAL_EPOCH
MAX_OFFSET_YEARS = 100


def is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def day_number(d: dt.date) -> int:
    return d.toordinal() - _ORDINAL_EPOCH


def to_date(day: int) -> dt.date:
    return dt.date.fromordinal(day + _ORDINAL_EPOCH)


@lru_cache(maxsize=65_536)  # `today + 6 months` is asked for every event, of few distinct days
def add_months(day: int, months: int) -> int:
    d = to_date(day)
    total = d.year * 12 + (d.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    return day_number(dt.date(year, month, min(d.day, days_in_month(year, month))))


def add_months_ms(ts: int, months: int) -> int:
    day, ms_of_day = divmod(ts, MS_PER_DAY)
    return add_months(day, months) * MS_PER_DAY + ms_of_day


@lru_cache(maxsize=65_536)  # every change shows `today` and dates: few distinct days
def format_date(day: int) -> str:
    return to_date(day).isoformat()


def format_timestamp(ts: int) -> str:
    moment = dt.datetime.fromtimestamp(ts / 1000, tz=dt.UTC)
    if ts % 1000:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_date(text: str) -> int:
    return day_number(dt.date.fromisoformat(text))


_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def timestamp_ms(moment: dt.datetime) -> int:
    """Exact milliseconds (no float rounding) of an offset-aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("a timestamp needs a UTC offset")
    return (moment - _EPOCH_UTC) // dt.timedelta(milliseconds=1)
