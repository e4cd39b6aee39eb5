"""Federal Reserve business days against the Fed's published holiday schedules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finance.fedcalendar import (
    add_business_days,
    business_day_on_or_after,
    effective_entry_date,
    fed_holidays,
    is_business_day,
    is_fed_holiday,
    next_business_day,
    previous_business_day,
    settlement_date,
)

D = date

# Holidays Observed by the Federal Reserve System, as published at federalreserve.gov/aboutthefed/k8.htm
# (2026-2030 table) and richmondfed.org/about_us/holiday_schedule (2025-2027). Nominal dates, in the
# table's order: New Year, MLK, Washington, Memorial, Juneteenth, Independence, Labor, Columbus,
# Veterans, Thanksgiving, Christmas.
PUBLISHED = {
    2025: [
        D(2025, 1, 1),
        D(2025, 1, 20),
        D(2025, 2, 17),
        D(2025, 5, 26),
        D(2025, 6, 19),
        D(2025, 7, 4),
        D(2025, 9, 1),
        D(2025, 10, 13),
        D(2025, 11, 11),
        D(2025, 11, 27),
        D(2025, 12, 25),
    ],
    2026: [
        D(2026, 1, 1),
        D(2026, 1, 19),
        D(2026, 2, 16),
        D(2026, 5, 25),
        D(2026, 6, 19),
        D(2026, 7, 4),
        D(2026, 9, 7),
        D(2026, 10, 12),
        D(2026, 11, 11),
        D(2026, 11, 26),
        D(2026, 12, 25),
    ],
    2027: [
        D(2027, 1, 1),
        D(2027, 1, 18),
        D(2027, 2, 15),
        D(2027, 5, 31),
        D(2027, 6, 19),
        D(2027, 7, 4),
        D(2027, 9, 6),
        D(2027, 10, 11),
        D(2027, 11, 11),
        D(2027, 11, 25),
        D(2027, 12, 25),
    ],
    2028: [
        D(2028, 1, 1),
        D(2028, 1, 17),
        D(2028, 2, 21),
        D(2028, 5, 29),
        D(2028, 6, 19),
        D(2028, 7, 4),
        D(2028, 9, 4),
        D(2028, 10, 9),
        D(2028, 11, 11),
        D(2028, 11, 23),
        D(2028, 12, 25),
    ],
    2029: [
        D(2029, 1, 1),
        D(2029, 1, 15),
        D(2029, 2, 19),
        D(2029, 5, 28),
        D(2029, 6, 19),
        D(2029, 7, 4),
        D(2029, 9, 3),
        D(2029, 10, 8),
        D(2029, 11, 11),
        D(2029, 11, 22),
        D(2029, 12, 25),
    ],
    2030: [
        D(2030, 1, 1),
        D(2030, 1, 21),
        D(2030, 2, 18),
        D(2030, 5, 27),
        D(2030, 6, 19),
        D(2030, 7, 4),
        D(2030, 9, 2),
        D(2030, 10, 14),
        D(2030, 11, 11),
        D(2030, 11, 28),
        D(2030, 12, 25),
    ],
}
# K.8 footnotes: "** Sunday - ... closed on July 5, 2027, and November 12, 2029."
SUNDAY_OBSERVANCES = {2027: [D(2027, 7, 5)], 2029: [D(2029, 11, 12)]}
# K.8 footnotes: "* Saturday - the Federal Reserve Banks are open ... on July 3, 2026, June 18, 2027,
# December 24, 2027, November 10, 2028" (and Friday 2027-12-31, before New Year's Day 2028 on a Saturday).
SATURDAY_FRIDAYS_OPEN = [D(2026, 7, 3), D(2027, 6, 18), D(2027, 12, 24), D(2027, 12, 31), D(2028, 11, 10)]


def _days(year: int) -> list[date]:
    start = date(year, 1, 1)
    return [start + timedelta(days=i) for i in range((date(year + 1, 1, 1) - start).days)]


@pytest.mark.parametrize("year", sorted(PUBLISHED))
def test_published_schedule(year: int) -> None:
    listed = fed_holidays(year)
    nominal = [d for d, name in listed.items() if not name.endswith("(observed)")]
    observed = [d for d, name in listed.items() if name.endswith("(observed)")]
    assert nominal == PUBLISHED[year]
    assert observed == SUNDAY_OBSERVANCES.get(year, [])
    # Every weekday the Fed is closed is a published holiday or its Monday observance, and nothing else.
    closed_weekdays = [d for d in _days(year) if d.weekday() < 5 and not is_business_day(d)]
    expected = sorted([d for d in PUBLISHED[year] if d.weekday() < 5] + SUNDAY_OBSERVANCES.get(year, []))
    assert closed_weekdays == expected


@pytest.mark.parametrize(
    "friday", [D(2020, 7, 3), D(2021, 6, 18), D(2021, 12, 31), D(2023, 11, 10), *SATURDAY_FRIDAYS_OPEN]
)
def test_friday_before_a_saturday_holiday_is_a_business_day(friday: date) -> None:
    assert friday.weekday() == 4
    assert is_fed_holiday(friday + timedelta(days=1))
    assert is_business_day(friday)
    assert not is_fed_holiday(friday)


def test_differs_from_the_federal_observed_calendar() -> None:
    federal_observed = holidays.US(years=2021)  # observed=True: federal offices close Friday 2021-12-31
    assert D(2021, 12, 31) in federal_observed
    assert is_business_day(D(2021, 12, 31))


@pytest.mark.parametrize(
    "monday", [D(2021, 7, 5), D(2022, 6, 20), D(2022, 12, 26), D(2023, 1, 2), D(2027, 7, 5), D(2029, 11, 12)]
)
def test_monday_after_a_sunday_holiday_is_closed(monday: date) -> None:
    assert monday.weekday() == 0
    assert is_fed_holiday(monday)
    assert not is_business_day(monday)
    assert fed_holidays(monday.year)[monday].endswith("(observed)")


def test_sunday_observance_names() -> None:
    assert fed_holidays(2022)[D(2022, 12, 26)] == "Christmas Day (observed)"
    assert fed_holidays(2023)[D(2023, 1, 2)] == "New Year's Day (observed)"


def test_juneteenth_only_from_2021() -> None:
    assert is_business_day(D(2020, 6, 19))  # a Friday
    assert D(2021, 6, 19) in fed_holidays(2021)
    assert not is_business_day(D(2024, 6, 19))


def test_weekends_are_not_business_days() -> None:
    assert not is_business_day(D(2025, 3, 8))
    assert not is_business_day(D(2025, 3, 9))
    assert is_business_day(D(2025, 3, 10))
    assert not is_fed_holiday(D(2025, 3, 8))


def test_next_and_previous_across_a_long_weekend() -> None:
    # Labor Day 2025 is Monday 1 September.
    assert next_business_day(D(2025, 8, 29)) == D(2025, 9, 2)
    assert previous_business_day(D(2025, 9, 2)) == D(2025, 8, 29)
    assert next_business_day(D(2025, 8, 30)) == D(2025, 9, 2)
    # Christmas 2027 is a Saturday: Friday 24 December is open, Monday 27 too.
    assert next_business_day(D(2027, 12, 23)) == D(2027, 12, 24)
    assert next_business_day(D(2027, 12, 24)) == D(2027, 12, 27)
    # 2022-12-24..26 (Sunday Christmas observed Monday), then 2022-12-31..2023-01-02.
    assert next_business_day(D(2022, 12, 23)) == D(2022, 12, 27)
    assert next_business_day(D(2022, 12, 30)) == D(2023, 1, 3)


def test_add_business_days() -> None:
    assert add_business_days(D(2025, 8, 29), 0) == D(2025, 8, 29)
    assert add_business_days(D(2025, 9, 1), 0) == D(2025, 9, 2)  # Labor Day rolls forward
    assert add_business_days(D(2025, 8, 29), 1) == D(2025, 9, 2)
    assert add_business_days(D(2025, 8, 29), 3) == D(2025, 9, 4)
    assert add_business_days(D(2025, 8, 30), 1) == D(2025, 9, 3)  # Saturday counts from Tuesday
    assert add_business_days(D(2025, 11, 26), 2) == D(2025, 12, 1)  # Thanksgiving; Friday after is open
    with pytest.raises(ValueError):
        add_business_days(D(2025, 1, 2), -1)


def test_settlement_date() -> None:
    friday = D(2025, 8, 29)
    assert settlement_date(friday, same_day=True) == friday
    assert settlement_date(friday, same_day=False) == D(2025, 9, 2)
    assert settlement_date(D(2025, 8, 30), same_day=True) == D(2025, 9, 2)  # Saturday: roll to Tuesday
    assert settlement_date(D(2025, 8, 30), same_day=False) == D(2025, 9, 3)
    assert settlement_date(D(2025, 9, 1), same_day=False) == D(2025, 9, 3)  # submitted on Labor Day
    assert settlement_date(D(2026, 7, 2), same_day=False) == D(2026, 7, 3)  # Fed open on Friday 3 July
    assert settlement_date(D(2021, 12, 30), same_day=False) == D(2021, 12, 31)


def test_effective_entry_date() -> None:
    assert effective_entry_date(D(2025, 8, 29), same_day=True) == D(2025, 8, 29)
    assert effective_entry_date(D(2025, 8, 29), same_day=False) == D(2025, 9, 2)
    # A requested date earlier than possible is moved to the earliest; a later one is kept, rolled forward.
    assert effective_entry_date(D(2025, 8, 29), False, requested=D(2025, 8, 28)) == D(2025, 9, 2)
    assert effective_entry_date(D(2025, 8, 29), False, requested=D(2025, 9, 5)) == D(2025, 9, 5)
    assert effective_entry_date(D(2025, 8, 29), False, requested=D(2025, 9, 6)) == D(2025, 9, 8)


def test_datetimes_are_refused() -> None:
    with pytest.raises(TypeError):
        is_business_day(datetime(2025, 1, 1, 12, tzinfo=UTC))
    with pytest.raises(TypeError):
        next_business_day("2025-01-01")  # type: ignore[arg-type]


def test_fed_holidays_returns_a_copy() -> None:
    fed_holidays(2025).clear()
    assert len(fed_holidays(2025)) == 11


dates = st.dates(date(2000, 1, 1), date(2098, 12, 31))
PROPERTY = settings(max_examples=200, deadline=None)


@PROPERTY
@given(dates)
def test_next_business_day_is_the_first_business_day_after(d: date) -> None:
    nxt = next_business_day(d)
    assert nxt > d and is_business_day(nxt)
    assert all(not is_business_day(d + timedelta(days=i)) for i in range(1, (nxt - d).days))
    prev = previous_business_day(d)
    assert prev < d and is_business_day(prev)
    assert all(not is_business_day(prev + timedelta(days=i)) for i in range(1, (d - prev).days))


@PROPERTY
@given(dates)
def test_business_days_are_never_weekends_or_holidays(d: date) -> None:
    if is_business_day(d):
        assert d.weekday() < 5 and not is_fed_holiday(d)
    else:
        assert d.weekday() >= 5 or is_fed_holiday(d)


@PROPERTY
@given(dates, dates, st.integers(0, 40), st.integers(0, 40))
def test_add_business_days_is_monotonic(a: date, b: date, m: int, n: int) -> None:
    a, b = min(a, b), max(a, b)
    m, n = min(m, n), max(m, n)
    assert add_business_days(a, m) <= add_business_days(a, n)
    assert add_business_days(a, n) <= add_business_days(b, n)
    assert is_business_day(add_business_days(a, n))
    if m < n:
        assert add_business_days(a, m) < add_business_days(a, n)
    assert add_business_days(a, n + 1) == next_business_day(add_business_days(a, n))


@PROPERTY
@given(dates, st.booleans())
def test_settlement_is_a_business_day_on_or_after_submission(d: date, same_day: bool) -> None:
    settles = settlement_date(d, same_day)
    assert is_business_day(settles) and settles >= d
    assert (settles == business_day_on_or_after(d)) == same_day
