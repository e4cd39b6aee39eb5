"""Daily interest accrual for deposit and savings accounts.

Each day accrues ``annual interest on that day's balance x the day's year fraction`` (see
``finance.daycount``), rounded to 10 decimal places (``round_accrual``) -- the figure stored per day.
A period's accrual is the sum of its stored daily accruals; it is rounded to cents only when posted
(``posting_amount``). The rounding policy is the one of ``finance.money`` (half up).

Rates are plain ``Decimal`` annual rates (``Decimal("0.0365")`` is 3.65%) or a ``TieredRate``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction

from finance.daycount import DayCount, day_fraction
from finance.money import round_accrual, round_money

__all__ = ["TieredRate", "accrue_day", "accrue_period", "annual_interest", "posting_amount"]


@dataclass(frozen=True)
class TieredRate:
    """Rate bands, each applied to the slice of the balance inside it (not to the whole balance).

    ``TieredRate([(Decimal("1000"), Decimal("0.01")), (Decimal("5000"), Decimal("0.02")),
    (None, Decimal("0.03"))])``: 1% on the first 1,000, 2% on 1,000-5,000, 3% above 5,000.
    Upper bounds must increase; the last band must be open (``None``) so no part of a balance
    goes unpriced. Balances must not be negative.
    """

    bands: tuple[tuple[Decimal | None, Decimal], ...]

    def __init__(self, bands: Iterable[tuple[Decimal | None, Decimal]]):
        bands = tuple((upto, rate) for upto, rate in bands)
        if not bands:
            raise ValueError("a tiered rate needs at least one band")
        if bands[-1][0] is not None:
            raise ValueError("the last band must be open-ended (upper bound None)")
        previous = Decimal(0)
        for upto, rate in bands:
            if not isinstance(rate, Decimal) or not rate.is_finite() or rate < 0:
                raise ValueError(f"band rate must be a non-negative Decimal: {rate!r}")
            if upto is None:
                continue
            if not isinstance(upto, Decimal) or not upto.is_finite() or upto <= previous:
                raise ValueError(f"band upper bounds must be increasing positive Decimals: {upto!r}")
            previous = upto
        if any(upto is None for upto, _ in bands[:-1]):
            raise ValueError("only the last band may be open-ended")
        object.__setattr__(self, "bands", bands)

    def annual_interest(self, balance: Decimal) -> Fraction:
        """Exact interest for a year on ``balance``: each band's rate on its slice."""
        if balance < 0:
            raise ValueError(f"tiered rates apply to non-negative balances, got {balance}")
        interest = Fraction(0)
        lower = Decimal(0)
        for upto, rate in self.bands:
            top = balance if upto is None else min(balance, upto)
            if top <= lower:
                break
            interest += Fraction(top - lower) * Fraction(rate)
            if upto is None:
                break
            lower = upto
        return interest


def annual_interest(balance: Decimal, annual_rate: Decimal | TieredRate) -> Fraction:
    """Exact interest for a whole year on ``balance`` (a flat rate also applies to negative balances)."""
    if isinstance(balance, float) or isinstance(annual_rate, float):
        raise TypeError("floats can't be money or rates: use Decimal")
    if isinstance(annual_rate, TieredRate):
        return annual_rate.annual_interest(balance)
    return Fraction(balance) * Fraction(annual_rate)


def accrue_day(balance: Decimal, annual_rate: Decimal | TieredRate, convention: DayCount, day: date) -> Decimal:
    """Interest that ``balance`` earns on ``day``, to 10 decimal places."""
    return round_accrual(annual_interest(balance, annual_rate) * day_fraction(convention, day))


def accrue_period(
    daily_balances: Mapping[date, Decimal] | Sequence[tuple[date, Decimal]],
    annual_rate: Decimal | TieredRate,
    convention: DayCount,
) -> Decimal:
    """Sum of the daily accruals for each (day, end-of-day balance), to 10 decimal places.

    A day listed twice is an error (it would be accrued twice).
    """
    pairs = list(daily_balances.items() if isinstance(daily_balances, Mapping) else daily_balances)
    days = [day for day, _ in pairs]
    if len(set(days)) != len(days):
        raise ValueError("a day appears more than once in the daily balances")
    # Summed as exact fractions so the caller's decimal context can't round the total.
    return round_accrual(
        sum((Fraction(accrue_day(balance, annual_rate, convention, day)) for day, balance in pairs), Fraction(0))
    )


def posting_amount(accrued_total: Decimal) -> Decimal:
    """The amount to post for an accrued total: rounded to cents, half up."""
    return round_money(accrued_total)
