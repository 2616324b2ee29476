"""fhirtime.surely_before: its text-order shortcut gives the answer the intervals give."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from migrainefhir.validate import fhirtime

YEARS = st.sampled_from(["1999", "2000", "2024", "2025"])


def two_digits(low: int, high: int) -> st.SearchStrategy[str]:
    # Valid values only: for a string interval() cannot read, both answers are False anyway.
    return st.integers(low, high).map(lambda n: f"{n:02d}")


ZONES = st.sampled_from(["Z", "+00:00", "+02:00", "-05:00", "+14:00", "-14:00", "+13:45", ""])
FRACTIONS = st.sampled_from(["", ".5", ".25", ".123456", ".1234"])


# Each field of a date or dateTime, and its precision ("form").
FIELDS: dict[str, st.SearchStrategy[str]] = {
    "year": YEARS,
    "month": two_digits(1, 12),
    "day": two_digits(1, 28),
    "hour": two_digits(0, 23),
    "minute": two_digits(0, 59),
    "second": two_digits(0, 60),
    "fraction": FRACTIONS,
    "zone": ZONES,
    "form": st.sampled_from(["year", "month", "day", "time"]),
}


def text(p: dict[str, str]) -> str:
    day = f"{p['year']}-{p['month']}-{p['day']}"
    return {
        "year": p["year"],
        "month": f"{p['year']}-{p['month']}",
        "day": day,
        "time": f"{day}T{p['hour']}:{p['minute']}:{p['second']}{p['fraction']}{p['zone']}",
    }[p["form"]]


@st.composite
def neighbours(draw: st.DrawFn) -> tuple[str, str]:
    """Two dates or dateTimes of every precision; the second is the first with one or two
    fields changed, so that the pairs are close in time."""
    first = draw(st.fixed_dictionaries(FIELDS))
    second = dict(first)
    for field in draw(st.lists(st.sampled_from(sorted(FIELDS)), min_size=1, max_size=2)):
        second[field] = draw(FIELDS[field])
    if draw(st.booleans()):
        return text(second), text(first)
    return text(first), text(second)


@settings(max_examples=1500)
@given(neighbours())
def test_surely_before_answers_as_the_intervals_do(pair: tuple[str, str]) -> None:
    later, earlier = pair
    expected = fhirtime.surely_before_by_intervals(later, earlier)
    assert fhirtime.surely_before(later, earlier) == expected


def test_the_shortcut_orders_times_of_one_zone_and_days_without_parsing() -> None:
    assert not fhirtime.surely_before("2025-10-01T23:27:00+02:00", "2025-10-01T13:25:00+02:00")
    assert fhirtime.surely_before("2025-10-01T13:25:00+02:00", "2025-10-01T23:27:00+02:00")
    assert not fhirtime.surely_before("2025-10-01T00:30:00+14:00", "2025-10-01")
    assert fhirtime.surely_before("2025-09-30T09:00:00+14:00", "2025-10-01")
