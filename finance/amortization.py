"""Loan repayment schedules.

Methods
-------
* ``DECLINING_BALANCE``: equal installments (annuity) ``P*r / (1 - (1+r)^-n)``, interest on the
  declining balance.
* ``EQUAL_PRINCIPAL``: the same principal every period, plus interest on the declining balance.
* ``FLAT``: total interest ``P * annual_rate * years`` (years = periods / periods per year) spread
  equally over the installments, which are equal; the principal part is the installment minus the
  interest part. ``day_count`` does not apply to flat loans.

The periodic rate is ``annual_rate / periods_per_year`` (12 monthly, 26 biweekly, 52 weekly). With a
``day_count`` the interest of each period is instead ``balance x annual_rate x year fraction`` between
consecutive due dates (under 30/360 a monthly period is always exactly 1/12, even when a due date is
clamped to a short month's end); the installment stays the annuity figure and the last installment
absorbs the difference. On a high-rate loan a long period's interest can then exceed the installment,
so the balance rises for that period.

Rounding (``finance.money`` policy: cents, half up; all intermediate values exact)
---------------------------------------------------------------------------------
* each period's interest is rounded to cents;
* the equal installment (annuity or flat) and the equal principal part are rounded to cents;
* the **last installment absorbs the rounding**: its principal is whatever balance remains, so the
  closing balance is exactly 0.00 (and a flat loan's interest parts sum exactly to its total interest).
  The gap between the last and the regular installment is bounded by 1 cent times the annuity's
  accumulation factor ((1+r)^n - 1)/r -- about n cents for short or low-rate loans, more for long
  ones, where the installment's sub-cent error compounds: $200,000 at 6.5% over 360 months pays
  1,264.14 a month and 1,259.56 last.
* Should the rounded installments pay the loan off before the last period (degenerate terms only: a
  tiny principal over many periods, such as $150 over 360 months, or a very high rate over a very long
  term) the schedule ends early, with a final installment that clears it.
* Terms whose rounded installment would not even cover the first period's interest (the loan would
  never amortize, e.g. $1,000 at 36% over 360 months) are refused with ValueError, as is a principal
  under one cent per installment.

Due dates: weekly/biweekly every 7/14 days from ``first_due_date``; monthly on the same day of the
month as ``first_due_date``, clamped to the month's end but keeping the anchor (Jan 31 -> Feb 28 ->
Mar 31).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from finance.daycount import DayCount, year_fraction
from finance.money import CENT, is_money, round_money

__all__ = [
    "AmortizationMethod",
    "Frequency",
    "Installment",
    "LoanTerms",
    "Schedule",
    "build_schedule",
    "due_date",
    "payoff_amount",
    "periodic_payment",
    "remaining_schedule",
]


class AmortizationMethod(StrEnum):
    DECLINING_BALANCE = "declining_balance"
    EQUAL_PRINCIPAL = "equal_principal"
    FLAT = "flat"


class Frequency(StrEnum):
    MONTHLY = "monthly"
    BIWEEKLY = "biweekly"
    WEEKLY = "weekly"

    @property
    def periods_per_year(self) -> int:
        return {Frequency.MONTHLY: 12, Frequency.BIWEEKLY: 26, Frequency.WEEKLY: 52}[self]


@dataclass(frozen=True)
class LoanTerms:
    principal: Decimal
    annual_rate: Decimal  # Decimal("0.06") is 6% a year
    term_periods: int
    method: AmortizationMethod
    frequency: Frequency
    first_due_date: date
    day_count: DayCount | None = None  # None: periodic rate = annual_rate / periods per year

    def __post_init__(self) -> None:
        _check_principal(self.principal, self.term_periods)
        _check_rate(self.annual_rate)
        if not isinstance(self.first_due_date, date) or isinstance(self.first_due_date, datetime):
            raise TypeError("first_due_date must be a date (not a datetime)")
        object.__setattr__(self, "method", AmortizationMethod(self.method))
        object.__setattr__(self, "frequency", Frequency(self.frequency))
        if self.day_count is not None:
            object.__setattr__(self, "day_count", DayCount(self.day_count))


@dataclass(frozen=True)
class Installment:
    number: int
    due_date: date
    payment: Decimal
    interest: Decimal
    principal: Decimal
    balance: Decimal  # outstanding principal after this installment


@dataclass(frozen=True)
class Schedule:
    installments: list[Installment]
    total_interest: Decimal
    total_payments: Decimal

    @classmethod
    def of(cls, installments: list[Installment]) -> Schedule:
        return cls(
            installments=installments,
            total_interest=sum((i.interest for i in installments), Decimal("0.00")),
            total_payments=sum((i.payment for i in installments), Decimal("0.00")),
        )


def _check_principal(principal: Decimal, periods: int) -> None:
    if not isinstance(periods, int) or isinstance(periods, bool) or periods < 1:
        raise ValueError(f"the term must be a positive whole number of periods, got {periods!r}")
    if not is_money(principal) or principal <= 0:
        raise ValueError(f"principal must be a positive Decimal amount in cents, got {principal!r}")
    if principal < periods * CENT:
        # Below a cent of principal per installment the rounded parts stop making sense.
        raise ValueError(f"principal {principal} is less than one cent per installment over {periods}")


def _check_rate(annual_rate: Decimal) -> None:
    if not isinstance(annual_rate, Decimal) or not annual_rate.is_finite() or annual_rate < 0:
        raise ValueError(f"annual_rate must be a non-negative Decimal, got {annual_rate!r}")


def due_date(first_due_date: date, frequency: Frequency, number: int) -> date:
    """Due date of installment ``number`` (1-based; 0 is one period before the first)."""
    frequency = Frequency(frequency)
    if frequency is Frequency.MONTHLY:
        months = first_due_date.month - 1 + number - 1
        year, month = first_due_date.year + months // 12, months % 12 + 1
        return date(year, month, min(first_due_date.day, calendar.monthrange(year, month)[1]))
    step = 7 if frequency is Frequency.WEEKLY else 14
    return first_due_date + timedelta(days=step * (number - 1))


def _annuity_payment(principal: Decimal, periodic_rate: Fraction, periods: int) -> Decimal:
    if periodic_rate == 0:
        return round_money(Fraction(principal) / periods)
    # Exact rational arithmetic, so the one rounding below is the only one.
    return round_money(Fraction(principal) * periodic_rate / (1 - (1 + periodic_rate) ** -periods))


def periodic_payment(
    principal: Decimal, annual_rate: Decimal, term_periods: int, frequency: Frequency = Frequency.MONTHLY
) -> Decimal:
    """The equal installment of a declining-balance loan, rounded to cents."""
    _check_principal(principal, term_periods)
    _check_rate(annual_rate)
    return _annuity_payment(principal, Fraction(annual_rate) / Frequency(frequency).periods_per_year, term_periods)


def _period_fraction(terms: LoanTerms, number: int) -> Fraction:
    """Fraction of a year that installment ``number`` charges interest for."""
    nominal = Fraction(1, terms.frequency.periods_per_year)
    if terms.day_count is None:
        return nominal
    if terms.day_count is DayCount.THIRTY_360 and terms.frequency is Frequency.MONTHLY:
        return nominal  # every month is 30 days, even when the due date is clamped to Feb 28
    start = due_date(terms.first_due_date, terms.frequency, number - 1)
    end = due_date(terms.first_due_date, terms.frequency, number)
    return year_fraction(terms.day_count, start, end)


def _build(terms: LoanTerms, principal: Decimal, first_number: int) -> Schedule:
    """Installments ``first_number``..``term_periods`` repaying ``principal``."""
    last_number = terms.term_periods
    periods = last_number - first_number + 1
    _check_principal(principal, periods)
    rate = Fraction(terms.annual_rate)

    def period_interest(balance: Decimal, number: int) -> Decimal:
        return round_money(Fraction(balance) * rate * _period_fraction(terms, number))

    match terms.method:
        case AmortizationMethod.DECLINING_BALANCE:
            payment = _annuity_payment(principal, rate / terms.frequency.periods_per_year, periods)
            first_interest = period_interest(principal, first_number)
            if periods > 1 and payment <= first_interest:
                raise ValueError(
                    f"the installment {payment} does not cover the first period's interest "
                    f"{first_interest}: the loan would never amortize; shorten the term"
                )
        case AmortizationMethod.EQUAL_PRINCIPAL:
            principal_part = round_money(Fraction(principal) / periods)
        case AmortizationMethod.FLAT:
            years = Fraction(periods, terms.frequency.periods_per_year)
            flat_total_interest = round_money(Fraction(principal) * rate * years)
            flat_payment = round_money(Fraction(principal + flat_total_interest) / periods)
            flat_interest_part = round_money(Fraction(flat_total_interest) / periods)

    installments: list[Installment] = []
    balance = principal
    interest_so_far = Decimal("0.00")
    for number in range(first_number, last_number + 1):
        match terms.method:
            case AmortizationMethod.DECLINING_BALANCE:
                interest = period_interest(balance, number)
                principal_part = payment - interest
            case AmortizationMethod.EQUAL_PRINCIPAL:
                interest = period_interest(balance, number)
            case AmortizationMethod.FLAT:
                interest = min(flat_interest_part, flat_total_interest - interest_so_far)
                principal_part = flat_payment - interest
        paid = min(principal_part, balance)
        if number == last_number or paid == balance:  # the last installment absorbs the rounding
            paid = balance
            if terms.method is AmortizationMethod.FLAT:
                interest = flat_total_interest - interest_so_far
        balance -= paid
        interest_so_far += interest
        installments.append(
            Installment(
                number=number,
                due_date=due_date(terms.first_due_date, terms.frequency, number),
                payment=interest + paid,
                interest=interest,
                principal=paid,
                balance=balance,
            )
        )
        if balance == 0:
            break
    return Schedule.of(installments)


def build_schedule(terms: LoanTerms) -> Schedule:
    """The full repayment schedule of ``terms``."""
    return _build(terms, terms.principal, first_number=1)


def remaining_schedule(terms: LoanTerms, outstanding_principal: Decimal, installments_paid: int) -> Schedule:
    """Re-amortize after a partial prepayment: same term and due dates, lower installments.

    ``installments_paid`` installments are behind us; the prepayment is taken as made on the due date
    of the last of them, so ``outstanding_principal`` is repaid over installments
    ``installments_paid + 1 .. term_periods`` (numbered as in the original schedule). Equal installments
    and equal principal parts are recomputed on the outstanding principal; a flat loan's interest is
    recomputed flat on the outstanding principal for the remaining periods.
    """
    if not isinstance(installments_paid, int) or not 0 <= installments_paid < terms.term_periods:
        raise ValueError(f"installments_paid must be between 0 and {terms.term_periods - 1}, got {installments_paid!r}")
    return _build(terms, outstanding_principal, first_number=installments_paid + 1)


def payoff_amount(
    outstanding_principal: Decimal,
    annual_rate: Decimal,
    day_count: DayCount,
    last_due_date: date,
    payoff_date: date,
) -> Decimal:
    """What clears the loan on ``payoff_date``: the outstanding principal plus the interest accrued on
    it from ``last_due_date`` (the last installment paid) up to ``payoff_date``, rounded to cents."""
    if not is_money(outstanding_principal) or outstanding_principal < 0:
        raise ValueError(f"outstanding principal must be a non-negative amount, got {outstanding_principal!r}")
    _check_rate(annual_rate)
    fraction = year_fraction(DayCount(day_count), last_due_date, payoff_date)
    return round_money(outstanding_principal) + round_money(
        Fraction(outstanding_principal) * Fraction(annual_rate) * fraction
    )
