"""Day-count conventions: how many days a period has, and what fraction of a year that is.

Conventions (periods are half-open: ``start`` counts, ``end`` does not):

* ``ACTUAL_365`` (Actual/365 Fixed): actual days / 365, leap years included (a leap year is 366/365).
* ``ACTUAL_360``: actual days / 360.
* ``THIRTY_360``: 30/360 **Bond Basis** (ISDA 2006 Definitions §4.16(f); the US "30/360" of the SIA's
  *Standard Securities Calculation Methods*, Lynch & Mayle 1986, as printed in the TI BA II Plus manual):
  ``days = 360*(Y2-Y1) + 30*(M2-M1) + (D2-D1)`` where D1 = 31 becomes 30, and D2 = 31 becomes 30
  when D1 (after that change) is 30. There is **no** end-of-February adjustment (that is the
  "30/360 US / SIA EOM" variant, not this one).
* ``ACTUAL_ACTUAL_ISDA``: days falling in a leap year / 366 + days in other years / 365.

Daily accrual (``day_fraction``, ``daily_rate``): each calendar day accrues the fraction of a year it
covers. For the actual conventions that is 1/365, 1/360, or 1/365 or 1/366 (by the day's own year).
For 30/360 every month must accrue exactly 30 days, so a day accrues the difference of an unadjusted
30/360 day number ``360*Y + 30*M + D`` between it and the next day: the 1st..30th accrue 1 day each,
the 31st accrues nothing, and the last day of February accrues the missing days (Feb 28 accrues 3,
or Feb 29 in a leap year accrues 2). These weights telescope, so daily accrual over any whole calendar
month (1st to 1st) is exactly 30/360 = 1/12 of a year, i.e. balance x rate / 12. Over periods that
start on a 31st, or end on a 31st after starting on the 30th/31st, the daily sum can differ by a day
from the Bond Basis count; interest is posted monthly, where the two agree.

Fractions are computed exactly (``fractions.Fraction``); ``day_count_fraction`` and ``daily_rate``
give them as Decimals to 34 significant digits for display and storage. Money calculations should use
the exact forms (``year_fraction``, ``day_fraction``) and round once.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from enum import StrEnum
from fractions import Fraction

__all__ = [
    "ACTUAL_360",
    "ACTUAL_365",
    "ACTUAL_ACTUAL_ISDA",
    "THIRTY_360",
    "DayCount",
    "daily_rate",
    "day_count_fraction",
    "day_fraction",
    "days_between",
    "year_fraction",
]


class DayCount(StrEnum):
    ACTUAL_365 = "actual/365"
    ACTUAL_360 = "actual/360"
    THIRTY_360 = "30/360"
    ACTUAL_ACTUAL_ISDA = "actual/actual"


ACTUAL_365 = DayCount.ACTUAL_365
ACTUAL_360 = DayCount.ACTUAL_360
THIRTY_360 = DayCount.THIRTY_360
ACTUAL_ACTUAL_ISDA = DayCount.ACTUAL_ACTUAL_ISDA

# Only for turning exact fractions into Decimals; never installed as the thread's context.
_DISPLAY_CONTEXT = Context(prec=34, rounding=ROUND_HALF_EVEN)


def _check_period(start: date, end: date) -> None:
    if end < start:
        raise ValueError(f"period ends ({end}) before it starts ({start})")


def _thirty_360_bond_basis_days(start: date, end: date) -> int:
    d1 = 30 if start.day == 31 else start.day
    d2 = 30 if end.day == 31 and d1 == 30 else end.day
    return 360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)


def _days_in_year(year: int) -> int:
    return 366 if calendar.isleap(year) else 365


def days_between(convention: DayCount, start: date, end: date) -> int:
    """Days in [start, end) under the convention (30/360: Bond Basis; others: actual days)."""
    convention = DayCount(convention)
    _check_period(start, end)
    if convention is DayCount.THIRTY_360:
        return _thirty_360_bond_basis_days(start, end)
    return (end - start).days


def year_fraction(convention: DayCount, start: date, end: date) -> Fraction:
    """Exact fraction of a year in [start, end)."""
    convention = DayCount(convention)
    _check_period(start, end)
    match convention:
        case DayCount.ACTUAL_365:
            return Fraction((end - start).days, 365)
        case DayCount.ACTUAL_360:
            return Fraction((end - start).days, 360)
        case DayCount.THIRTY_360:
            return Fraction(_thirty_360_bond_basis_days(start, end), 360)
        case DayCount.ACTUAL_ACTUAL_ISDA:
            fraction = Fraction(0)
            cursor = start
            while cursor < end:  # one slice per calendar year
                next_new_year = date(cursor.year + 1, 1, 1)
                slice_end = min(end, next_new_year)
                fraction += Fraction((slice_end - cursor).days, _days_in_year(cursor.year))
                cursor = slice_end
            return fraction


def day_count_fraction(convention: DayCount, start: date, end: date) -> Decimal:
    """``year_fraction`` as a Decimal (34 significant digits)."""
    fraction = year_fraction(convention, start, end)
    return _DISPLAY_CONTEXT.divide(Decimal(fraction.numerator), Decimal(fraction.denominator))


def _thirty_360_day_number(day: date) -> int:
    return 360 * day.year + 30 * day.month + day.day  # unadjusted on purpose: see module docstring


def day_fraction(convention: DayCount, day: date) -> Fraction:
    """Exact fraction of a year that one calendar day accrues (see the module docstring for 30/360)."""
    convention = DayCount(convention)
    match convention:
        case DayCount.ACTUAL_365:
            return Fraction(1, 365)
        case DayCount.ACTUAL_360:
            return Fraction(1, 360)
        case DayCount.THIRTY_360:
            next_day = day + timedelta(days=1)
            return Fraction(_thirty_360_day_number(next_day) - _thirty_360_day_number(day), 360)
        case DayCount.ACTUAL_ACTUAL_ISDA:
            return Fraction(1, _days_in_year(day.year))


def daily_rate(annual_rate: Decimal, convention: DayCount, day: date) -> Decimal:
    """The rate that ``day`` accrues: annual_rate x ``day_fraction`` (34 significant digits).

    Under 30/360 this is annual_rate/360 on most days, 0 on the 31st and 2 or 3 times that on the
    last day of February.
    """
    if not isinstance(annual_rate, Decimal):
        raise TypeError("annual_rate must be a Decimal")
    exact = Fraction(annual_rate) * day_fraction(convention, day)
    return _DISPLAY_CONTEXT.divide(Decimal(exact.numerator), Decimal(exact.denominator))
