from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finance.daycount import (
    ACTUAL_360,
    ACTUAL_365,
    ACTUAL_ACTUAL_ISDA,
    THIRTY_360,
    DayCount,
    daily_rate,
    day_count_fraction,
    day_fraction,
    days_between,
    year_fraction,
)

D = Decimal
PROPERTY = settings(max_examples=200, deadline=None)
dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))


def test_enum_values_and_aliases():
    assert [c.value for c in DayCount] == ["actual/365", "actual/360", "30/360", "actual/actual"]
    assert tuple(DayCount) == (ACTUAL_365, ACTUAL_360, THIRTY_360, ACTUAL_ACTUAL_ISDA)
    assert DayCount("30/360") is THIRTY_360
    assert days_between("actual/360", date(2026, 1, 1), date(2026, 2, 1)) == 31  # plain strings work


# 30/360 Bond Basis, rule as printed in the TI BA II Plus manual (appendix "30/360 day-count method",
# citing Lynch & Mayle, "Standard Securities Calculation Methods", SIA 1986) and the cbonds.com
# glossary "30/360 ISDA (Bond Basis)": D1=31 -> 30; D2=31 and D1 in (30, 31) -> 30.
# days = 360*(Y2-Y1) + 30*(M2-M1) + (D2-D1); expected figures worked by hand.
@pytest.mark.parametrize(
    "start, end, days",
    [
        (date(2026, 1, 1), date(2026, 2, 1), 30),
        (date(2026, 1, 15), date(2026, 7, 15), 180),
        (date(2026, 1, 31), date(2026, 2, 28), 28),  # D1 31->30: 30 + (28-30)
        (date(2026, 1, 30), date(2026, 3, 31), 60),  # D2 31->30 because D1 is 30
        (date(2026, 1, 31), date(2026, 3, 31), 60),  # both -> 30
        (date(2026, 1, 29), date(2026, 3, 31), 62),  # D1 < 30 so D2 stays 31: 60 + 2
        (date(2026, 2, 28), date(2026, 3, 31), 33),  # no end-of-February rule: 30 + 3
        (date(2025, 12, 31), date(2026, 12, 31), 360),
        (date(2026, 3, 1), date(2026, 3, 31), 30),
        (date(2026, 5, 5), date(2026, 5, 5), 0),
    ],
)
def test_thirty_360_bond_basis_days(start, end, days):
    assert days_between(THIRTY_360, start, end) == days
    assert year_fraction(THIRTY_360, start, end) == Fraction(days, 360)


def test_actual_conventions_count_calendar_days():
    nov = (date(2026, 11, 1), date(2026, 12, 1))
    for convention in (ACTUAL_365, ACTUAL_360, ACTUAL_ACTUAL_ISDA):
        assert days_between(convention, *nov) == 30
    assert days_between(ACTUAL_365, date(2028, 2, 1), date(2028, 3, 1)) == 29  # leap February


def test_year_fractions_worked_by_hand():
    assert year_fraction(ACTUAL_365, date(2026, 11, 1), date(2026, 12, 1)) == Fraction(30, 365)
    assert year_fraction(ACTUAL_360, date(2026, 1, 1), date(2026, 2, 1)) == Fraction(31, 360)
    # Actual/365 Fixed: a leap year is more than a year.
    assert year_fraction(ACTUAL_365, date(2028, 1, 1), date(2029, 1, 1)) == Fraction(366, 365)
    # Actual/Actual ISDA: Dec 15 2027 -> Jan 15 2028 = 17 days of 2027 / 365 + 14 days of 2028 / 366.
    assert year_fraction(ACTUAL_ACTUAL_ISDA, date(2027, 12, 15), date(2028, 1, 15)) == Fraction(17, 365) + Fraction(
        14, 366
    )
    assert year_fraction(ACTUAL_ACTUAL_ISDA, date(2028, 1, 1), date(2029, 1, 1)) == 1
    assert year_fraction(ACTUAL_ACTUAL_ISDA, date(2027, 7, 1), date(2029, 7, 1)) == Fraction(184, 365) + 1 + Fraction(
        181, 365
    )


def test_day_count_fraction_is_a_decimal():
    assert day_count_fraction(THIRTY_360, date(2026, 1, 15), date(2026, 7, 15)) == D("0.5")
    assert day_count_fraction(ACTUAL_360, date(2026, 1, 1), date(2026, 1, 10)) == D("0.025")
    thirty_of_365 = day_count_fraction(ACTUAL_365, date(2026, 11, 1), date(2026, 12, 1))
    assert isinstance(thirty_of_365, Decimal)
    assert thirty_of_365 == D("0.08219178082191780821917808219178082")
    assert abs(Fraction(thirty_of_365) - Fraction(30, 365)) < Fraction(1, 10**34)


@pytest.mark.parametrize("convention", list(DayCount))
def test_end_before_start_is_rejected(convention):
    with pytest.raises(ValueError, match="before it starts"):
        days_between(convention, date(2026, 2, 1), date(2026, 1, 1))
    with pytest.raises(ValueError):
        year_fraction(convention, date(2026, 2, 1), date(2026, 1, 1))


@pytest.mark.parametrize(
    "day, weight",
    [
        (date(2026, 1, 15), 1),
        (date(2026, 1, 30), 1),
        (date(2026, 1, 31), 0),  # the 31st accrues nothing
        (date(2026, 2, 27), 1),
        (date(2026, 2, 28), 3),  # ...and February's end accrues the missing 29th and 30th
        (date(2028, 2, 28), 1),
        (date(2028, 2, 29), 2),
        (date(2026, 12, 31), 0),
    ],
)
def test_thirty_360_daily_weights(day, weight):
    assert day_fraction(THIRTY_360, day) == Fraction(weight, 360)
    assert daily_rate(D("0.036"), THIRTY_360, day) == D("0.0001") * weight


def test_daily_rate_actual_conventions():
    assert daily_rate(D("0.0365"), ACTUAL_365, date(2028, 2, 29)) == D("0.0001")
    assert daily_rate(D("0.036"), ACTUAL_360, date(2026, 3, 31)) == D("0.0001")
    assert daily_rate(D("0.0366"), ACTUAL_ACTUAL_ISDA, date(2028, 6, 1)) == D("0.0001")
    assert daily_rate(D("0.0365"), ACTUAL_ACTUAL_ISDA, date(2027, 6, 1)) == D("0.0001")
    assert daily_rate(D("0.05"), ACTUAL_365, date(2026, 1, 1)) == D("0.0001369863013698630136986301369863014")
    with pytest.raises(TypeError):
        daily_rate(0.05, ACTUAL_365, date(2026, 1, 1))  # type: ignore[arg-type]


def _daily_sum(convention, start, end):
    return sum((day_fraction(convention, start + timedelta(days=i)) for i in range((end - start).days)), Fraction(0))


@PROPERTY
@given(start=dates, length=st.integers(min_value=0, max_value=800))
def test_daily_fractions_add_up_to_the_period_for_actual_conventions(start, length):
    end = start + timedelta(days=length)
    for convention in (ACTUAL_365, ACTUAL_360, ACTUAL_ACTUAL_ISDA):
        assert _daily_sum(convention, start, end) == year_fraction(convention, start, end)


@PROPERTY
@given(
    year=st.integers(min_value=1990, max_value=2100),
    month=st.integers(min_value=1, max_value=12),
    months=st.integers(min_value=0, max_value=30),
)
def test_thirty_360_daily_fractions_make_whole_months_exactly(year, month, months):
    start = date(year, month, 1)
    end_index = year * 12 + month - 1 + months
    end = date(end_index // 12, end_index % 12 + 1, 1)
    assert _daily_sum(THIRTY_360, start, end) == Fraction(months, 12)
    assert year_fraction(THIRTY_360, start, end) == Fraction(months, 12)


@PROPERTY
@given(start=dates, length=st.integers(min_value=0, max_value=1200))
def test_thirty_360_daily_sum_matches_bond_basis_unless_a_31st_is_involved(start, length):
    end = start + timedelta(days=length)
    if start.day == 31 or (end.day == 31 and start.day >= 30):
        return
    assert _daily_sum(THIRTY_360, start, end) == year_fraction(THIRTY_360, start, end)
