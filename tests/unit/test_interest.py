from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finance.daycount import ACTUAL_360, ACTUAL_365, ACTUAL_ACTUAL_ISDA, THIRTY_360, DayCount
from finance.interest import TieredRate, accrue_day, accrue_period, annual_interest, posting_amount

D = Decimal
PROPERTY = settings(max_examples=200, deadline=None)


def month_days(year: int, month: int) -> list[date]:
    first = date(year, month, 1)
    next_first = date(year + month // 12, month % 12 + 1, 1)
    return [first + timedelta(days=i) for i in range((next_first - first).days)]


def constant_balance(days, balance):
    return dict.fromkeys(days, balance)


def test_actual_365_november_2026():
    # 10,000 x 3.65% / 365 = 1.00 a day; November has 30 days -> 30.00.
    november = month_days(2026, 11)
    assert accrue_day(D("10000"), D("0.0365"), ACTUAL_365, november[0]) == D("1.0000000000")
    accrued = accrue_period(constant_balance(november, D("10000.00")), D("0.0365"), ACTUAL_365)
    assert accrued == D("30.0000000000")
    assert posting_amount(accrued) == D("30.00")


def test_actual_360_thirty_one_days():
    # 10,000 x 3.60% / 360 = 1.00 a day; January has 31 days -> 31.00.
    january = month_days(2026, 1)
    accrued = accrue_period(constant_balance(january, D("10000.00")), D("0.036"), ACTUAL_360)
    assert accrued == D("31.0000000000")
    assert posting_amount(accrued) == D("31.00")


@pytest.mark.parametrize("year, month", [(2026, m) for m in range(1, 13)] + [(2028, 2)])
def test_thirty_360_month_is_exactly_a_twelfth_of_a_year(year, month):
    # 10,000 x 4.32% / 12 = 36.00 every month. Daily 10,000 x 4.32% / 360 = 1.20; a 31-day month
    # accrues nothing on the 31st (30 x 1.20); February 2026 accrues 3.60 on the 28th
    # (27 x 1.20 + 3.60); February 2028 accrues 2.40 on the 29th (28 x 1.20 + 2.40).
    accrued = accrue_period(constant_balance(month_days(year, month), D("10000.00")), D("0.0432"), THIRTY_360)
    assert accrued == D("36.0000000000")
    assert accrue_day(D("10000.00"), D("0.0432"), THIRTY_360, date(2026, 2, 28)) == D("3.6")
    assert accrue_day(D("10000.00"), D("0.0432"), THIRTY_360, date(2026, 3, 31)) == D("0")


def test_thirty_360_month_with_a_repeating_daily_figure():
    # 10,000 x 5% / 360 = 1.38888... -> 1.3888888889 a day (10 dp); 30 days of 30/360 = 41.666666667
    # accrued, against 10,000 x 5% / 12 = 41.6666...; both post as 41.67.
    accrued = accrue_period(constant_balance(month_days(2026, 4), D("10000.00")), D("0.05"), THIRTY_360)
    assert accrued == D("41.6666666670")
    assert posting_amount(accrued) == D("41.67") == posting_amount(D("10000") * D("0.05") / 12)


def test_leap_years_per_convention():
    year_2028 = [date(2028, 1, 1) + timedelta(days=i) for i in range(366)]
    balances = constant_balance(year_2028, D("10000.00"))
    # Actual/365 Fixed: 366 days x (10,000 x 3.65% / 365 = 1.00) = 366.00 -- more than the annual rate.
    assert accrue_period(balances, D("0.0365"), ACTUAL_365) == D("366")
    # Actual/Actual ISDA: each 2028 day is 1/366 of a year: exactly 10,000 x 3.66% = 366.00.
    assert accrue_period(balances, D("0.0366"), ACTUAL_ACTUAL_ISDA) == D("366")
    # 30/360: 12 months x 30 days x 1.00 = 360.00.
    assert accrue_period(balances, D("0.036"), THIRTY_360) == D("360")


def test_varying_balances_worked_by_hand():
    # 3 days at 2.5% Actual/365: 1,234.56 -> 1,234.56 -> 5,000.00
    #   1,234.56 x 0.025 / 365 = 0.084558904109589... -> 0.0845589041 (twice)
    #   5,000.00 x 0.025 / 365 = 0.342465753424657... -> 0.3424657534
    #   total 0.5115835616 -> posts 0.51
    days = [(date(2026, 3, 1), D("1234.56")), (date(2026, 3, 2), D("1234.56")), (date(2026, 3, 3), D("5000.00"))]
    assert accrue_day(D("1234.56"), D("0.025"), ACTUAL_365, date(2026, 3, 1)) == D("0.0845589041")
    accrued = accrue_period(days, D("0.025"), ACTUAL_365)
    assert accrued == D("0.5115835616")
    assert posting_amount(accrued) == D("0.51")
    assert accrue_period(dict(days), D("0.025"), ACTUAL_365) == accrued  # mapping or pairs alike


def test_half_cent_posts_half_up():
    assert posting_amount(D("0.0050000000")) == D("0.01")
    assert posting_amount(D("12.3449999999")) == D("12.34")
    assert posting_amount(D("12.3450000000")) == D("12.35")


def test_a_day_cannot_be_accrued_twice():
    with pytest.raises(ValueError, match="more than once"):
        accrue_period([(date(2026, 1, 1), D("1")), (date(2026, 1, 1), D("2"))], D("0.01"), ACTUAL_365)


def test_empty_period_accrues_nothing():
    assert accrue_period({}, D("0.05"), ACTUAL_365) == D("0")


def test_flat_rate_on_an_overdrawn_balance_is_negative():
    assert accrue_day(D("-3650.00"), D("0.10"), ACTUAL_365, date(2026, 1, 1)) == D("-1.0000000000")


def test_floats_are_rejected():
    with pytest.raises(TypeError):
        accrue_day(D("100"), 0.05, ACTUAL_365, date(2026, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        accrue_day(100.0, D("0.05"), ACTUAL_365, date(2026, 1, 1))  # type: ignore[arg-type]


TIERS = TieredRate([(D("1000"), D("0.01")), (D("5000"), D("0.02")), (None, D("0.03"))])


@pytest.mark.parametrize(
    "balance, yearly",
    [
        (D("0"), D("0")),
        (D("500"), D("5")),  # 500 x 1%
        (D("1000"), D("10")),  # 1,000 x 1%
        (D("3000"), D("50")),  # 10 + 2,000 x 2%
        (D("5000"), D("90")),  # 10 + 4,000 x 2%
        (D("10000"), D("240")),  # 10 + 80 + 5,000 x 3%
    ],
)
def test_tiered_rate_applies_each_rate_to_its_slice(balance, yearly):
    assert TIERS.annual_interest(balance) == yearly
    assert annual_interest(balance, TIERS) == yearly


def test_tiered_month_under_thirty_360():
    # 240.00 a year on 10,000 -> 20.00 for a 30/360 month (daily 240 / 360 = 0.6666666667).
    accrued = accrue_period(constant_balance(month_days(2026, 6), D("10000.00")), TIERS, THIRTY_360)
    assert accrued == D("20.0000000010")
    assert posting_amount(accrued) == D("20.00")


def test_single_open_band_is_a_flat_rate():
    flat = TieredRate([(None, D("0.05"))])
    assert (
        accrue_day(D("7300.00"), flat, ACTUAL_365, date(2026, 1, 1))
        == accrue_day(D("7300.00"), D("0.05"), ACTUAL_365, date(2026, 1, 1))
        == D("1")
    )


@pytest.mark.parametrize(
    "bands",
    [
        [],
        [(D("1000"), D("0.01"))],  # last band must be open
        [(D("1000"), D("0.01")), (D("1000"), D("0.02")), (None, D("0.03"))],  # not increasing
        [(None, D("0.01")), (None, D("0.02"))],
        [(D("1000"), D("-0.01")), (None, D("0.02"))],
        [(D("1000"), 0.01), (None, D("0.02"))],
    ],
)
def test_tiered_rate_validation(bands):
    with pytest.raises(ValueError):
        TieredRate(bands)


def test_tiered_rate_rejects_negative_balances():
    with pytest.raises(ValueError, match="non-negative"):
        accrue_day(D("-1"), TIERS, ACTUAL_365, date(2026, 1, 1))


@PROPERTY
@given(
    balance=st.integers(min_value=0, max_value=10**10).map(lambda c: D(c).scaleb(-2)),
    rate=st.integers(min_value=0, max_value=2000).map(lambda bp: D(bp).scaleb(-4)),
    year=st.integers(min_value=2000, max_value=2099),
    month=st.integers(min_value=1, max_value=12),
)
def test_a_thirty_360_month_accrues_balance_times_rate_over_twelve(balance, rate, year, month):
    days = month_days(year, month)
    accrued = accrue_period(constant_balance(days, balance), rate, THIRTY_360)
    exact = Fraction(balance) * Fraction(rate) / 12
    # each day is rounded to 10 dp, so at most half a unit per accruing day of drift
    assert abs(Fraction(accrued) - exact) <= Fraction(len(days), 2 * 10**10)
    assert accrued.as_tuple().exponent == -10
    assert posting_amount(accrued).as_tuple().exponent == -2


@PROPERTY
@given(
    balances=st.lists(
        st.integers(min_value=0, max_value=10**9).map(lambda c: D(c).scaleb(-2)), min_size=1, max_size=40
    ),
    rate=st.integers(min_value=0, max_value=2000).map(lambda bp: D(bp).scaleb(-4)),
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 1, 1)),
    convention=st.sampled_from(list(DayCount)),
)
def test_period_accrual_is_the_sum_of_daily_accruals(balances, rate, start, convention):
    days = [(start + timedelta(days=i), balance) for i, balance in enumerate(balances)]
    total = accrue_period(days, rate, convention)
    assert total == sum(accrue_day(b, rate, convention, d) for d, b in days)
    assert abs(posting_amount(total) - total) <= D("0.005")
