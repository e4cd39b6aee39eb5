"""Money: the one rounding policy of the back office.

Policy
------
* Money is ``Decimal``, never ``float`` (a float cannot hold 0.10 exactly). Every function here rejects
  floats with ``TypeError``.
* An amount of money has exactly 2 decimal places (cents, ``CENT``).
* Rounding is **ROUND_HALF_UP** (a half cent goes away from zero: 0.125 -> 0.13, -0.125 -> -0.13).
  Why not banker's rounding: consumer-lending disclosures, loan servicing systems and the published
  amortization tables we test against (textbooks, calculators, mortgage examples) all round half up;
  with ROUND_HALF_EVEN an interest line landing on an exact half cent (e.g. 150.00 at 7%/12 = 0.875)
  would print 0.87 where every published table prints 0.88. Half-even's advantage, no statistical drift
  over millions of roundings, matters little here because we round once per posting, not per day.
* Accruals (daily interest) keep 10 decimal places (``ACCRUAL_QUANTUM``) with the same rounding, and
  are rounded to cents only when posted.
* Rounding is exact: values may be given as ``fractions.Fraction`` (e.g. balance x rate x days / 365),
  so a result that is exactly half a cent is recognised as such, never as 0.00499999...
* The thread's decimal context is never mutated: quantizing uses an explicit private context, so
  results do not depend on whatever precision the caller has set.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from fractions import Fraction
from typing import cast

from iso4217 import Currency

__all__ = [
    "ACCRUAL_QUANTUM",
    "CENT",
    "ROUNDING",
    "allocate",
    "format_money",
    "format_usd",
    "is_money",
    "parse_money",
    "round_accrual",
    "round_money",
    "to_money",
]

ROUNDING = ROUND_HALF_UP
CENT = Decimal("0.01")
ACCRUAL_QUANTUM = Decimal("0.0000000001")

# Wide enough for any realistic amount at 10 decimal places; traps turn silent NaNs into errors.
_CONTEXT = Context(prec=60, rounding=ROUNDING, traps=[InvalidOperation, DivisionByZero, Overflow])

Number = Decimal | int | Fraction


def _reject_float(value: object) -> None:
    if isinstance(value, float):
        raise TypeError("floats can't be money: pass a Decimal, int or str")
    if isinstance(value, bool):
        raise TypeError("a bool is not an amount")


def _round(value: Number, quantum: Decimal) -> Decimal:
    _reject_float(value)
    if isinstance(value, Fraction):
        return _round_fraction(value, quantum)
    if isinstance(value, int):
        value = Decimal(value)
    if not isinstance(value, Decimal):
        raise TypeError(f"expected Decimal, int or Fraction, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {value}")
    rounded = value.quantize(quantum, context=_CONTEXT)
    return abs(rounded) if rounded == 0 else rounded  # never "-0.00"


def _round_fraction(value: Fraction, quantum: Decimal) -> Decimal:
    """Round an exact rational half up (away from zero) to ``quantum`` with integer arithmetic."""
    places = -cast(int, quantum.as_tuple().exponent)  # a finite quantum's exponent is an int
    scaled = abs(value) * 10**places
    units, remainder = divmod(scaled.numerator, scaled.denominator)
    if 2 * remainder >= scaled.denominator:
        units += 1
    sign = 1 if value < 0 and units else 0
    return Decimal((sign, tuple(int(d) for d in str(units)), -places))


def to_money(value: Decimal | int | str) -> Decimal:
    """Convert trusted input to money, rounding to cents under the policy. Floats raise TypeError.

    For untrusted input (an API field) use ``parse_money``, which rejects instead of rounding.
    """
    _reject_float(value)
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
    if not isinstance(value, (Decimal, int)):
        raise TypeError(f"expected Decimal, int or str, got {type(value).__name__}")
    return _round(value, CENT)


def round_money(value: Number) -> Decimal:
    """Round to cents, half up."""
    return _round(value, CENT)


def round_accrual(value: Number) -> Decimal:
    """Round to the accrual precision (10 decimal places), half up."""
    return _round(value, ACCRUAL_QUANTUM)


def is_money(value: object) -> bool:
    """True for a finite Decimal whose value has at most 2 decimal places (1.5 and 1.500 qualify)."""
    return isinstance(value, Decimal) and value.is_finite() and (Fraction(value) * 100).denominator == 1


_PLAIN_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def parse_money(text: str, *, allow_negative: bool = False) -> Decimal:
    """Parse untrusted text such as ``"1234.5"`` into money (``Decimal("1234.50")``).

    Plain decimal notation only (no exponent, thousands separators or currency sign). Raises
    ValueError, saying why, for: not a number, NaN/Infinity, more than 2 decimal places, and a
    negative amount unless ``allow_negative``.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    stripped = text.strip()
    try:
        value = Decimal(stripped)
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"NaN and Infinity are not amounts: {text!r}")
    if not _PLAIN_DECIMAL.fullmatch(stripped):
        raise ValueError(f"use plain decimal notation such as 1234.56: {text!r}")
    if cast(int, value.as_tuple().exponent) < -2:  # finite (checked above): an int
        raise ValueError(f"more than 2 decimal places: {text!r}")
    if value < 0 and not allow_negative:
        raise ValueError(f"negative amount not allowed: {text!r}")
    return _round(value, CENT)


def format_usd(value: Decimal | int) -> str:
    """``Decimal("-1234.5")`` -> ``"-$1,234.50"`` (rounded to cents first)."""
    amount = round_money(value)
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def format_money(value: Decimal | int, currency: str) -> str:
    """US dollars as format_usd; another currency as its amount and code, in its minor units:
    ``(Decimal("-1234.5"), "EUR")`` -> ``"-1,234.50 EUR"``, ``(Decimal("1500"), "JPY")`` -> ``"1,500 JPY"``."""
    if currency == "USD":
        return format_usd(value)
    amount = round_money(value)
    places = min(Currency(currency).exponent or 0, 2)  # the ledger keeps cents: no currency here has more
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount):,.{places}f} {currency}"


def allocate(total: Decimal | int, weights: Sequence[Decimal | int]) -> list[Decimal]:
    """Split ``total`` into parts proportional to ``weights`` that sum exactly to ``total``.

    Largest-remainder method on whole cents: every part gets the floor of its exact share, and the
    cents left over go one each to the largest fractional remainders (earliest wins a tie). So each
    part is within one cent of its exact share. A negative total is split as its absolute value, then
    negated.
    """
    _reject_float(total)
    if not is_money(total if isinstance(total, Decimal) else Decimal(total)):
        raise ValueError(f"total must be an amount in cents: {total}")
    if not weights:
        raise ValueError("no weights to allocate over")
    for weight in weights:
        _reject_float(weight)
        if not isinstance(weight, (Decimal, int)) or not Decimal(weight).is_finite() or weight < 0:
            raise ValueError(f"weights must be finite, non-negative Decimals or ints: {weight!r}")
    weight_sum = sum(Fraction(w) for w in weights)
    if weight_sum == 0:
        raise ValueError("weights sum to zero")

    total_cents = int(abs(Fraction(total)) * 100)
    shares = [total_cents * Fraction(w) / weight_sum for w in weights]
    cents = [share.numerator // share.denominator for share in shares]
    leftover = total_cents - sum(cents)
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(shares[i] - cents[i]), i))
    for i in by_remainder[:leftover]:
        cents[i] += 1
    sign = -1 if total < 0 else 1
    return [Decimal(sign * c).scaleb(-2, context=_CONTEXT) for c in cents]
