"""FHIR R4 date, dateTime and instant values: shape, calendar validity, and comparison.

R4 datatypes (https://hl7.org/fhir/R4/datatypes.html#dateTime): YYYY, YYYY-MM, YYYY-MM-DD or
YYYY-MM-DDThh:mm:ss(.sss)(Z|+hh:mm|-hh:mm); "If hours and minutes are specified, a time zone
SHALL be populated"; seconds may be 60 (leap second). A partial value stands for the whole
interval it names, so two values are only ordered when their intervals do not overlap.
"""

from __future__ import annotations

import calendar
import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Loose shape: every field is two digits where R4 wants two digits, ranges are checked after.
_SHAPE = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?P<fraction>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)

_WIDEST_OFFSET = timedelta(hours=14)  # a value without a zone could be in any zone


@dataclass(frozen=True, slots=True)
class Interval:
    """The instants a (possibly partial) FHIR date/dateTime may stand for: [low, high)."""

    low: datetime
    high: datetime


# Pure functions of a string, called for every date of every resource: the dates of one record
# repeat in each of its resources (issued, lastUpdated, effective), so small caches pay off.
@functools.lru_cache(maxsize=8192)
def calendar_problem(value: str) -> str | None:
    """Why a date-shaped value names no real moment (month 13, 30 February, 25:61), or None."""
    match = _SHAPE.match(value)
    if match is None:
        return None
    year, month, day = match["year"], match["month"], match["day"]
    if month is not None and not 1 <= int(month) <= 12:
        return f"month {month} does not exist"
    if day is not None and month is not None:
        last = calendar.monthrange(int(year), int(month))[1]
        if not 1 <= int(day) <= last:
            return f"day {day} does not exist in {year}-{month}"
    if match["hour"] is not None and int(match["hour"]) > 23:
        return f"hour {match['hour']} does not exist"
    if match["minute"] is not None and int(match["minute"]) > 59:
        return f"minute {match['minute']} does not exist"
    if match["second"] is not None and int(match["second"]) > 60:
        return f"second {match['second']} does not exist"
    tz = match["tz"]
    if tz not in (None, "Z") and (int(tz[1:3]) > 14 or int(tz[4:6]) > 59):
        return f"time-zone offset {tz} does not exist"
    return None


@functools.lru_cache(maxsize=8192)
def interval(value: str) -> Interval | None:
    """The interval a valid FHIR date/dateTime names, in UTC; None when it cannot be read."""
    match = _SHAPE.match(value)
    if match is None or calendar_problem(value) is not None:
        return None
    year = int(match["year"])
    if match["month"] is None:
        low = datetime(year, 1, 1, tzinfo=UTC)
        return _floating(low, datetime(year + 1, 1, 1, tzinfo=UTC))
    month = int(match["month"])
    if match["day"] is None:
        low = datetime(year, month, 1, tzinfo=UTC)
        next_month = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        return _floating(low, next_month)
    day = datetime(year, month, int(match["day"]), tzinfo=UTC)
    if match["hour"] is None:
        return _floating(day, day + timedelta(days=1))
    second = min(int(match["second"] or 0), 59)  # a leap second sorts with second 59
    moment = day.replace(hour=int(match["hour"]), minute=int(match["minute"]), second=second)
    fraction = match["fraction"]
    if fraction:
        moment = moment.replace(microsecond=int((fraction[1:] + "000000")[:6]))
    tz = match["tz"]
    if tz is None:  # invalid in FHIR (structure reports it), but still comparable loosely
        return _floating(moment, moment + timedelta(seconds=1))
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        moment -= sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    precision = timedelta(seconds=1) if match["second"] is not None else timedelta(minutes=1)
    if fraction:
        precision = timedelta(microseconds=1)
    return Interval(moment, moment + precision)


def _floating(low: datetime, high: datetime) -> Interval:
    # Dates carry no zone: widen by the largest offset so we never call a valid order wrong.
    return Interval(low - _WIDEST_OFFSET, high + _WIDEST_OFFSET)


def surely_before(later: str, earlier: str) -> bool:
    """True when `later` certainly names a moment before `earlier` (the pair is out of order)."""
    return not _in_text_order(earlier, later) and surely_before_by_intervals(later, earlier)


def surely_before_by_intervals(later: str, earlier: str) -> bool:
    """surely_before from the parsed intervals alone (the definition the shortcut keeps)."""
    a, b = interval(later), interval(earlier)
    return a is not None and b is not None and a.high <= b.low


def _in_text_order(first: str, second: str) -> bool:
    """True when `second` is surely not before `first` because their text says so (saves
    parsing the usual pairs of one record's times). Invalid strings are no exception:
    interval() gives them None, and surely_before says False for them as well.

    * Two strings of one length in the same zone ("Z" at the end of both, or the same last six
      characters: an offset) have the same form (date precision, fraction digits), so their
      fixed-width fields compare in text order as in time.
    * A whole day `first` (YYYY-MM-DD): a time on that day or later, in any zone, is not
      before the day starts in the earliest zone, which is where its interval starts."""
    if len(first) == len(second) and (
        first[-1:] == second[-1:] == "Z" or first[-6:] == second[-6:]
    ):
        return second >= first
    return len(first) == 10 and len(second) >= 10 and second[:10] >= first
