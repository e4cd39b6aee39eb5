import dataclasses
import itertools
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from finance.amortization import (
    AmortizationMethod,
    Frequency,
    Installment,
    LoanTerms,
    build_schedule,
    due_date,
    payoff_amount,
    periodic_payment,
    remaining_schedule,
)
from finance.daycount import DayCount

D = Decimal
PROPERTY = settings(max_examples=200, deadline=None)
DECLINING = AmortizationMethod.DECLINING_BALANCE
MONTHLY = Frequency.MONTHLY


def monthly_loan(principal, rate, months, method=DECLINING, first=date(2026, 1, 31), day_count=None):
    return LoanTerms(D(principal), D(rate), months, method, MONTHLY, first, day_count)


def rows(schedule):
    return [(i.payment, i.interest, i.principal, i.balance) for i in schedule.installments]


def row(payment, interest, principal, balance):
    return (D(payment), D(interest), D(principal), D(balance))


# --- declining balance (equal installments): published examples -------------------------------------


def test_200000_at_6_percent_for_30_years():
    # "$200,000 mortgage for 30 years at 6%" worked solution, answerprime.com
    # (https://answerprime.com/200-000-mortgage-monthly-payment/): payment $1,199.10; first-year table
    # rows 1: 1,000.00 / 199.10 / 199,800.90, 2: 999.00 / 200.10 / 199,600.80, 4: 997.00 / 202.10 /
    # 199,197.60, 5: 995.99 / 203.11 / 198,994.49, 12: interest 988.77, principal 210.33. Also
    # mathondemand.com "Monthly loan payment on a $200,000 loan for 30 years with a 6% interest rate".
    # (That table carries unrounded balances, so its rows 3 and 11-12 balances are a cent off ours;
    # its total interest 231,676.38 = 360 x 1,199.10 - 200,000 ignores the final installment, which
    # here absorbs +1.04 of rounding.)
    schedule = build_schedule(monthly_loan("200000.00", "0.06", 360))
    table = rows(schedule)
    assert periodic_payment(D("200000.00"), D("0.06"), 360) == D("1199.10")
    assert table[0] == row("1199.10", "1000.00", "199.10", "199800.90")
    assert table[1] == row("1199.10", "999.00", "200.10", "199600.80")
    assert table[3] == row("1199.10", "997.00", "202.10", "199197.60")
    assert table[4] == row("1199.10", "995.99", "203.11", "198994.49")
    assert table[11][:3] == row("1199.10", "988.77", "210.33", "0")[:3]
    assert all(payment == D("1199.10") for payment, *_ in table[:-1])
    assert table[-1] == row("1200.14", "5.97", "1194.17", "0.00")
    assert schedule.total_interest == D("231677.04")
    assert schedule.total_payments == D("431677.04")


def test_100000_at_6_percent_for_30_years():
    # qammunity.org/21186223 (Farha's mortgage): "M = $599.55 (rounded to the nearest cent)".
    # First interest 100,000 x 0.5% = 500.00, so 99.55 of principal.
    schedule = build_schedule(monthly_loan("100000.00", "0.06", 360))
    assert rows(schedule)[0] == row("599.55", "500.00", "99.55", "99900.45")


def test_300000_at_6_5_percent_for_30_years():
    # calculatey.pages.dev/mortgage-calculator worked example: "$300,000 ... 6.5% ... 30 years ...
    # ≈ $1,896.20 per month".
    assert periodic_payment(D("300000.00"), D("0.065"), 360) == D("1896.20")


def test_150000_at_3_625_percent_rows_and_the_half_cent():
    # "Math 352 - Theory of Interest - Amortization Project" (Scribd): $150,000, 360 months, 3.625%,
    # payment 684.08; rows 1-8 below. Row 1 interest is exactly 150,000 x 0.03625 / 12 = 453.125, which
    # the table shows as 453.13 -- half up (banker's rounding would give 453.12 and shift every row).
    # From row 9 that spreadsheet's unrounded payment (684.0757...) makes its principal a cent lower.
    table = rows(build_schedule(monthly_loan("150000.00", "0.03625", 360, first=date(2026, 1, 1))))
    assert table[:8] == [
        row("684.08", "453.13", "230.95", "149769.05"),
        row("684.08", "452.43", "231.65", "149537.40"),
        row("684.08", "451.73", "232.35", "149305.05"),
        row("684.08", "451.03", "233.05", "149072.00"),
        row("684.08", "450.32", "233.76", "148838.24"),
        row("684.08", "449.62", "234.46", "148603.78"),
        row("684.08", "448.91", "235.17", "148368.61"),
        row("684.08", "448.20", "235.88", "148132.73"),
    ]


def test_1000_at_12_percent_over_72_months():
    # justaaa.com "A local organization borrows $1,000 ... 12 percent ... monthly": payment 19.55;
    # rows 1: 10.00 / 9.55 / 990.45, 2: 9.90 / 9.65 / 980.80, 3: 9.81 / 9.74 / 971.06.
    table = rows(build_schedule(monthly_loan("1000.00", "0.12", 72)))
    assert table[:3] == [
        row("19.55", "10.00", "9.55", "990.45"),
        row("19.55", "9.90", "9.65", "980.80"),
        row("19.55", "9.81", "9.74", "971.06"),
    ]


def test_1000_at_2_percent_a_month_over_6_months():
    # Sapling, "How to Calculate Reducing Balance Interest Rate"
    # (https://www.sapling.com/8703730/calculate-reducing-balance-interest-rate): $1,000 at 2% a month,
    # 6 installments of $178.53; month 1: 20.00 interest, 158.53 principal, balance 841.47; month 2:
    # 16.83 interest, 161.70 principal. (The article's total interest 71.15 is the unrounded figure;
    # with cents each month and the last installment absorbing, it is 71.16 -- worked below.)
    schedule = build_schedule(monthly_loan("1000.00", "0.24", 6))
    assert rows(schedule) == [
        row("178.53", "20.00", "158.53", "841.47"),
        row("178.53", "16.83", "161.70", "679.77"),  # 841.47 x 2% = 16.8294
        row("178.53", "13.60", "164.93", "514.84"),  # 679.77 x 2% = 13.5954
        row("178.53", "10.30", "168.23", "346.61"),  # 514.84 x 2% = 10.2968
        row("178.53", "6.93", "171.60", "175.01"),  # 346.61 x 2% = 6.9322
        row("178.51", "3.50", "175.01", "0.00"),  # 175.01 x 2% = 3.5002; pays the rest
    ]
    assert schedule.total_interest == D("71.16")


def test_1000_at_12_percent_over_12_months_every_row():
    # $1,000 at 12% for 12 monthly payments of $88.85: amortizationcalc.ca "Cost of borrowing explained"
    # ("monthly payments of $88.85 based upon borrowing $1000 at 12%"). Rows worked by hand at 1% a month:
    schedule = build_schedule(monthly_loan("1000.00", "0.12", 12))
    assert rows(schedule) == [
        row("88.85", "10.00", "78.85", "921.15"),
        row("88.85", "9.21", "79.64", "841.51"),  # 921.15 x 1% = 9.2115
        row("88.85", "8.42", "80.43", "761.08"),  # 8.4151
        row("88.85", "7.61", "81.24", "679.84"),  # 7.6108
        row("88.85", "6.80", "82.05", "597.79"),  # 6.7984
        row("88.85", "5.98", "82.87", "514.92"),  # 5.9779
        row("88.85", "5.15", "83.70", "431.22"),  # 5.1492
        row("88.85", "4.31", "84.54", "346.68"),  # 4.3122
        row("88.85", "3.47", "85.38", "261.30"),  # 3.4668
        row("88.85", "2.61", "86.24", "175.06"),  # 2.6130
        row("88.85", "1.75", "87.10", "87.96"),  # 1.7506
        row("88.84", "0.88", "87.96", "0.00"),  # 0.8796; the last installment absorbs the rounding
    ]
    assert schedule.total_interest == D("66.19")
    assert schedule.total_payments == D("1066.19")


def test_long_loans_can_end_more_than_n_cents_off():
    # The installment's rounding error compounds over the term. Replayed here with plain Decimal
    # arithmetic: 200,000 at 6.5% over 360 months pays 1,264.14 (the exact annuity is 1,264.136...),
    # so 0.0036 too little each month, grown at 0.5417% a month -> the last installment is 4.58 lower
    # -- more than 360 cents. Bounded by a cent times the accumulation factor (test below).
    schedule = build_schedule(monthly_loan("200000.00", "0.065", 360))
    balance, payment = D("200000.00"), D("1264.14")
    for _ in range(359):
        balance -= payment - (balance * D("0.065") / 12).quantize(D("0.01"), rounding=ROUND_HALF_UP)
    last = balance + (balance * D("0.065") / 12).quantize(D("0.01"), rounding=ROUND_HALF_UP)
    assert schedule.installments[0].payment == payment
    assert schedule.installments[-1].payment == last == D("1259.56")


def test_zero_rate_declining_balance_is_principal_over_n():
    schedule = build_schedule(monthly_loan("1000.00", "0", 3))
    assert rows(schedule) == [
        row("333.33", "0.00", "333.33", "666.67"),
        row("333.33", "0.00", "333.33", "333.34"),
        row("333.34", "0.00", "333.34", "0.00"),
    ]


def test_annuity_matches_an_independent_decimal_computation():
    # The same formula with a 50-digit Decimal context, for weekly and biweekly periods too.
    context = Context(prec=50)
    for principal, rate, periods, frequency in [
        ("10000.00", "0.06", 26, Frequency.BIWEEKLY),
        ("2500.00", "0.199", 52, Frequency.WEEKLY),
        ("350000.00", "0.0725", 360, MONTHLY),
    ]:
        r = context.divide(D(rate), frequency.periods_per_year)
        factor = context.subtract(1, context.power(context.add(1, r), -periods))
        expected = context.divide(context.multiply(D(principal), r), factor).quantize(D("0.01"))
        assert periodic_payment(D(principal), D(rate), periods, frequency) == expected


# --- equal principal -----------------------------------------------------------------------------------


def test_equal_principal_12000_at_12_percent_over_12_months():
    # Constant-payment-to-principal loan as derived in the GnuCash financial calculator notes
    # ("constant payment to principal", src/doc/constderv in the GnuCash sources): C = PV/N,
    # I[n] = i*PV*(1 + N - n)/N, total interest T[N] = i*PV*(N + 1)/2.
    # PV 12,000, i 1%, N 12: C = 1,000.00; I[1] = 120.00, I[12] = 10.00; T = 0.01 x 12,000 x 13/2 = 780.00.
    schedule = build_schedule(monthly_loan("12000.00", "0.12", 12, AmortizationMethod.EQUAL_PRINCIPAL))
    table = rows(schedule)
    assert all(principal == D("1000.00") for _, _, principal, _ in table)
    assert table[0] == row("1120.00", "120.00", "1000.00", "11000.00")
    assert table[1] == row("1110.00", "110.00", "1000.00", "10000.00")
    assert table[-1] == row("1010.00", "10.00", "1000.00", "0.00")
    assert schedule.total_interest == D("780.00")


def test_equal_principal_last_installment_absorbs_the_rounding():
    # 1,000 / 3 = 333.33 twice, then 333.34; interest 1% on 1,000.00, 666.67, 333.34.
    schedule = build_schedule(monthly_loan("1000.00", "0.12", 3, AmortizationMethod.EQUAL_PRINCIPAL))
    assert rows(schedule) == [
        row("343.33", "10.00", "333.33", "666.67"),
        row("340.00", "6.67", "333.33", "333.34"),
        row("336.67", "3.33", "333.34", "0.00"),
    ]


# --- flat ----------------------------------------------------------------------------------------------


def test_flat_mifos_example():
    # Mifos documentation, "Flat interest calculation" (mifosforge.jira.com wiki): $1,000 at 2% a month
    # for 4 months -> interest 1,000 x 2/100 x 4 = 80; interest installment 20, principal installment
    # 250, monthly installment 270.
    schedule = build_schedule(monthly_loan("1000.00", "0.24", 4, AmortizationMethod.FLAT))
    assert rows(schedule) == [
        row("270.00", "20.00", "250.00", "750.00"),
        row("270.00", "20.00", "250.00", "500.00"),
        row("270.00", "20.00", "250.00", "250.00"),
        row("270.00", "20.00", "250.00", "0.00"),
    ]
    assert schedule.total_interest == D("80.00")


def test_flat_10000_at_10_percent_for_2_years():
    # 10,000 x 10% x 2 = 2,000 interest; 12,000 / 24 = 500.00 a month. Interest part 2,000/24 = 83.33,
    # principal part 416.67; the last installment takes what is left: 2,000 - 23 x 83.33 = 83.41 of
    # interest and 10,000 - 23 x 416.67 = 416.59 of principal -- still 500.00.
    schedule = build_schedule(monthly_loan("10000.00", "0.10", 24, AmortizationMethod.FLAT))
    table = rows(schedule)
    assert all(payment == D("500.00") for payment, *_ in table)
    assert table[0] == row("500.00", "83.33", "416.67", "9583.33")
    assert table[-1] == row("500.00", "83.41", "416.59", "0.00")
    assert schedule.total_interest == D("2000.00")
    assert schedule.total_payments == D("12000.00")


def test_flat_100000_at_12_percent_for_3_years():
    # By hand: 100,000 x 12% x 3 = 36,000 interest; 136,000 / 36 = 3,777.78; interest part
    # 36,000 / 36 = 1,000.00 every month; last = 136,000 - 35 x 3,777.78 = 3,777.70.
    schedule = build_schedule(monthly_loan("100000.00", "0.12", 36, AmortizationMethod.FLAT))
    assert schedule.installments[0].payment == D("3777.78")
    assert schedule.installments[-1].payment == D("3777.70")
    assert schedule.total_interest == D("36000.00")


# --- due dates and day counts -----------------------------------------------------------------------------


def test_monthly_due_dates_keep_the_month_end_anchor():
    first = date(2027, 12, 31)
    assert [due_date(first, MONTHLY, n) for n in range(6)] == [
        date(2027, 11, 30),
        date(2027, 12, 31),
        date(2028, 1, 31),
        date(2028, 2, 29),
        date(2028, 3, 31),
        date(2028, 4, 30),
    ]
    schedule = build_schedule(monthly_loan("1200.00", "0.12", 14, first=date(2026, 1, 31)))
    assert [i.due_date for i in schedule.installments][:4] == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
    ]
    assert schedule.installments[-1].due_date == date(2027, 2, 28)


def test_weekly_and_biweekly_due_dates():
    assert due_date(date(2026, 1, 2), Frequency.WEEKLY, 3) == date(2026, 1, 16)
    assert due_date(date(2026, 1, 2), Frequency.BIWEEKLY, 3) == date(2026, 1, 30)
    terms = LoanTerms(D("10000.00"), D("0.06"), 26, DECLINING, Frequency.BIWEEKLY, date(2026, 1, 2))
    schedule = build_schedule(terms)
    # 10,000 x 6% / 26 = 23.0769... -> 23.08 of interest first.
    assert schedule.installments[0].interest == D("23.08")
    assert schedule.installments[-1].due_date == date(2026, 12, 18)


def test_actual_365_interest_follows_the_days_between_due_dates():
    # Installment 1 covers Dec 31 2025 -> Jan 31 2026 = 31 days: 10,000 x 6% x 31/365 = 50.9589 -> 50.96.
    # Installment 2: Jan 31 -> Feb 28 = 28 days on 9,190.30: 42.3004 -> 42.30. The payment is still the
    # annuity figure (860.66); the last installment absorbs the difference.
    schedule = build_schedule(monthly_loan("10000.00", "0.06", 12, day_count=DayCount.ACTUAL_365))
    table = rows(schedule)
    assert table[0] == row("860.66", "50.96", "809.70", "9190.30")
    assert table[1] == row("860.66", "42.30", "818.36", "8371.94")
    assert table[-1] == row("859.34", "4.36", "854.98", "0.00")


def test_thirty_360_monthly_schedule_is_the_nominal_schedule():
    nominal = build_schedule(monthly_loan("25000.00", "0.085", 60))
    thirty_360 = build_schedule(monthly_loan("25000.00", "0.085", 60, day_count=DayCount.THIRTY_360))
    assert rows(nominal) == rows(thirty_360)


# --- prepayment and payoff ------------------------------------------------------------------------------


def test_remaining_schedule_after_a_prepayment_lowers_the_payment():
    terms = monthly_loan("200000.00", "0.06", 360)
    original = build_schedule(terms)
    after_twelve = original.installments[11].balance  # 197,543.99
    outstanding = after_twelve - D("20000.00")
    schedule = remaining_schedule(terms, outstanding, installments_paid=12)
    first = schedule.installments[0]
    assert first.number == 13 and first.due_date == date(2027, 1, 31)
    # 177,543.99 x 0.005 / (1 - 1.005^-348) = 1,077.7002... -> 1,077.70 (was 1,199.10);
    # interest 177,543.99 x 0.5% = 887.71995 -> 887.72, principal 1,077.70 - 887.72 = 189.98.
    assert first.payment == periodic_payment(outstanding, D("0.06"), 348) == D("1077.70")
    assert (first.interest, first.principal) == (D("887.72"), D("189.98"))
    assert len(schedule.installments) == 348
    assert schedule.installments[-1].number == 360
    assert schedule.installments[-1].due_date == original.installments[-1].due_date
    assert schedule.installments[-1].balance == D("0.00")
    assert sum(i.principal for i in schedule.installments) == outstanding


def test_remaining_schedule_keeps_the_month_end_anchor():
    terms = monthly_loan("6000.00", "0.12", 6, first=date(2026, 1, 31))
    schedule = remaining_schedule(terms, D("3000.00"), installments_paid=1)  # next due Feb 28
    assert [i.due_date for i in schedule.installments] == [
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
        date(2026, 5, 31),
        date(2026, 6, 30),
    ]


def test_remaining_schedule_from_the_start_is_the_schedule():
    terms = monthly_loan("5000.00", "0.09", 24, AmortizationMethod.EQUAL_PRINCIPAL)
    assert remaining_schedule(terms, terms.principal, 0) == build_schedule(terms)


def test_remaining_schedule_flat_recomputes_interest_on_what_is_left():
    terms = monthly_loan("10000.00", "0.10", 24, AmortizationMethod.FLAT)
    # 6,000 left over 12 months: 6,000 x 10% x 1 = 600 interest; 6,600 / 12 = 550.00 a month.
    schedule = remaining_schedule(terms, D("6000.00"), installments_paid=12)
    assert all(i.payment == D("550.00") for i in schedule.installments)
    assert schedule.total_interest == D("600.00")


@pytest.mark.parametrize("paid", [-1, 24, 25])
def test_remaining_schedule_rejects_impossible_progress(paid):
    with pytest.raises(ValueError):
        remaining_schedule(monthly_loan("5000.00", "0.09", 24), D("1000.00"), paid)


def test_payoff_amount_accrues_to_the_day():
    # 100,000 at 6% from Jan 31 to Feb 15 2026:
    #   Actual/365: 15 days -> 100,000 x 0.06 x 15/365 = 246.5753... -> 246.58
    #   Actual/360: 15 days -> 250.00
    #   30/360 Bond Basis: D1 31 -> 30; (2-1) x 30 + 15 - 30 = 15 days -> 250.00
    args = (D("100000.00"), D("0.06"))
    last, payoff = date(2026, 1, 31), date(2026, 2, 15)
    assert payoff_amount(*args, DayCount.ACTUAL_365, last, payoff) == D("100246.58")
    assert payoff_amount(*args, DayCount.ACTUAL_360, last, payoff) == D("100250.00")
    assert payoff_amount(*args, DayCount.THIRTY_360, last, payoff) == D("100250.00")
    assert payoff_amount(*args, DayCount.ACTUAL_365, last, last) == D("100000.00")
    with pytest.raises(ValueError):
        payoff_amount(*args, DayCount.ACTUAL_365, payoff, last)


# --- validation -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"principal": D("0")},
        {"principal": D("-100.00")},
        {"principal": D("100.001")},
        {"principal": 1000.0},
        {"principal": D("3.59")},  # less than a cent per installment over 360
        {"annual_rate": D("-0.01")},
        {"annual_rate": 0.05},
        {"annual_rate": D("NaN")},
        {"term_periods": 0},
        {"term_periods": True},
        {"method": "balloon"},
        {"frequency": "daily"},
        {"day_count": "actual/364"},
    ],
)
def test_terms_validation(changes):
    base = dict(
        principal=D("1000.00"),
        annual_rate=D("0.05"),
        term_periods=360,
        method=DECLINING,
        frequency=MONTHLY,
        first_due_date=date(2026, 1, 1),
        day_count=None,
    )
    with pytest.raises(ValueError):
        LoanTerms(**(base | changes))


def test_terms_are_frozen_and_accept_enum_strings():
    terms = LoanTerms(D("1000.00"), D("0.05"), 12, "flat", "weekly", date(2026, 1, 1), "30/360")
    assert terms.method is AmortizationMethod.FLAT
    assert terms.frequency is Frequency.WEEKLY
    assert terms.day_count is DayCount.THIRTY_360
    with pytest.raises(dataclasses.FrozenInstanceError):
        terms.principal = D("1")  # type: ignore[misc]
    with pytest.raises(TypeError):
        LoanTerms(D("1000.00"), D("0.05"), 12, "flat", "weekly", "2026-01-01")  # type: ignore[arg-type]


def test_an_installment_that_never_covers_the_interest_is_rejected():
    # 1,000 at 36% over 30 years: the exact payment 30.0007 rounds to 30.00 = the first month's interest.
    with pytest.raises(ValueError, match="does not cover"):
        build_schedule(monthly_loan("1000.00", "0.36", 360))


# --- properties -------------------------------------------------------------------------------------------


ANY_DAY_COUNT = st.none() | st.sampled_from(list(DayCount))


def loan_terms(day_count=ANY_DAY_COUNT):
    return st.builds(
        LoanTerms,
        principal=st.integers(min_value=100_00, max_value=2_000_000_00).map(lambda c: D(c).scaleb(-2)),
        annual_rate=st.integers(min_value=0, max_value=3000).map(lambda bp: D(bp).scaleb(-4)),  # 0%..30%
        term_periods=st.integers(min_value=1, max_value=360),
        method=st.sampled_from(list(AmortizationMethod)),
        frequency=st.sampled_from(list(Frequency)),
        first_due_date=st.dates(min_value=date(2000, 1, 1), max_value=date(2060, 12, 31)),
        day_count=day_count,
    )


def _schedule_or_skip(terms):
    try:
        return build_schedule(terms)
    except ValueError as error:  # only the never-amortizing installment is refused
        if "does not cover" not in str(error):
            raise
        assume(False)


def _accumulation_factor(terms):
    """((1+r)^n - 1)/r: how much one cent of per-period rounding can grow to by the last installment."""
    r = Fraction(terms.annual_rate) / terms.frequency.periods_per_year
    n = terms.term_periods
    return Fraction(n) if r == 0 else ((1 + r) ** n - 1) / r


@PROPERTY
@given(terms=loan_terms())
def test_schedule_invariants(terms):
    schedule = _schedule_or_skip(terms)
    installments = schedule.installments
    amounts = [a for i in installments for a in (i.payment, i.interest, i.principal, i.balance)]
    assert all(isinstance(a, Decimal) and a.as_tuple().exponent == -2 for a in amounts)
    assert sum(i.principal for i in installments) == terms.principal
    assert installments[-1].balance == D("0.00")
    assert all(i.payment == i.interest + i.principal for i in installments)
    assert all(i.interest >= 0 for i in installments)
    assert schedule.total_interest == sum(i.interest for i in installments)
    assert schedule.total_payments == terms.principal + schedule.total_interest
    assert [i.number for i in installments] == list(range(1, len(installments) + 1))
    assert len(installments) <= terms.term_periods
    dates = [i.due_date for i in installments]
    assert dates == sorted(set(dates))
    if terms.day_count is None or terms.method is not DECLINING:
        # the nominal rate always amortizes; (a day count can charge a long month more than the installment)
        balances = [terms.principal] + [i.balance for i in installments]
        assert all(later <= earlier for earlier, later in itertools.pairwise(balances))


@PROPERTY
@given(terms=loan_terms(day_count=st.none()))
def test_equal_parts_all_equal_except_the_last(terms):
    schedule = _schedule_or_skip(terms)
    installments = schedule.installments
    n = len(installments)
    assume(n == terms.term_periods)  # not cut short by degenerate rounding
    *regular, last = installments
    match terms.method:
        case AmortizationMethod.DECLINING_BALANCE:
            payment = periodic_payment(terms.principal, terms.annual_rate, n, terms.frequency)
            assert all(i.payment == payment for i in regular)
            # A sub-cent error in the installment compounds at the periodic rate, so the last one can
            # differ by up to a cent times the accumulation factor (= n cents at 0%).
            assert abs(last.payment - payment) <= Fraction(1, 100) * _accumulation_factor(terms)
            if terms.annual_rate == 0:
                assert abs(last.payment - payment) < D(n) / 100
        case AmortizationMethod.EQUAL_PRINCIPAL:
            assert len({i.principal for i in regular}) <= 1
            if regular:
                assert abs(last.principal - regular[0].principal) < D(n) / 100
        case AmortizationMethod.FLAT:
            assert len({i.payment for i in regular}) <= 1
            if regular:
                assert abs(last.payment - regular[0].payment) < D(n) / 100
            years = Fraction(n, terms.frequency.periods_per_year)
            expected_interest = Fraction(terms.principal) * Fraction(terms.annual_rate) * years
            assert abs(Fraction(schedule.total_interest) - expected_interest) <= Fraction(1, 200)


@PROPERTY
@given(terms=loan_terms(), data=st.data())
def test_remaining_schedule_invariants(terms, data):
    schedule = _schedule_or_skip(terms)
    assume(len(schedule.installments) == terms.term_periods and terms.term_periods > 1)
    paid = data.draw(st.integers(min_value=1, max_value=terms.term_periods - 1))
    balance = schedule.installments[paid - 1].balance
    prepayment = data.draw(st.integers(min_value=0, max_value=int(balance * 100) // 2))
    outstanding = balance - D(prepayment).scaleb(-2)
    assume(outstanding >= D(terms.term_periods - paid) / 100)
    try:
        remaining = remaining_schedule(terms, outstanding, paid)
    except ValueError as error:
        if "does not cover" not in str(error):
            raise
        return
    assert remaining.installments[0].number == paid + 1
    assert remaining.installments[0].due_date == schedule.installments[paid].due_date
    assert sum(i.principal for i in remaining.installments) == outstanding
    assert remaining.installments[-1].balance == D("0.00")
    if terms.method is DECLINING:  # a smaller principal never needs a larger installment
        remaining_periods = terms.term_periods - paid
        assert periodic_payment(outstanding, terms.annual_rate, remaining_periods, terms.frequency) <= (
            periodic_payment(balance, terms.annual_rate, remaining_periods, terms.frequency)
        )


def test_installment_is_a_plain_record():
    installment = Installment(1, date(2026, 1, 1), D("1.00"), D("0.10"), D("0.90"), D("0.00"))
    assert dataclasses.asdict(installment)["principal"] == D("0.90")
