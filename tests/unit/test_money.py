from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finance.money import (
    ACCRUAL_QUANTUM,
    CENT,
    ROUNDING,
    allocate,
    format_money,
    format_usd,
    is_money,
    parse_money,
    round_accrual,
    round_money,
    to_money,
)

D = Decimal
PROPERTY = settings(max_examples=200, deadline=None)
cents = st.integers(min_value=-(10**12), max_value=10**12).map(lambda c: D(c).scaleb(-2))


def test_policy_constants():
    assert ROUNDING == ROUND_HALF_UP
    assert D("0.01") == CENT
    assert D("0.0000000001") == ACCRUAL_QUANTUM


@pytest.mark.parametrize(
    "value, expected",
    [
        (D("0.125"), D("0.13")),  # half-even would give 0.12
        (D("-0.125"), D("-0.13")),  # half away from zero
        (D("2.675"), D("2.68")),
        (D("0.135"), D("0.14")),
        (D("0.1249999"), D("0.12")),
        (D("-0.004"), D("0.00")),  # never -0.00
        (7, D("7.00")),
        (Fraction(1, 8), D("0.13")),  # exactly half a cent above 0.12
        (Fraction(-1, 8), D("-0.13")),
        (Fraction(1, 3), D("0.33")),
        (Fraction(-1, 1000), D("0.00")),
        (Fraction(150 * 7, 1200), D("0.88")),  # 150.00 at 7%/12 = 0.875 exactly
    ],
)
def test_round_money_half_up(value, expected):
    result = round_money(value)
    assert result == expected
    assert str(result) == str(expected)


def test_round_money_ignores_the_callers_decimal_context():
    with localcontext() as ctx:
        ctx.prec = 3
        ctx.rounding = ROUND_DOWN
        assert round_money(D("12345678.675")) == D("12345678.68")
        assert round_accrual(D("1.00000000005")) == D("1.0000000001")


def test_round_accrual_keeps_ten_places():
    assert round_accrual(Fraction(365, 365 * 3)) == D("0.3333333333")
    assert round_accrual(D("0.00000000005")) == D("0.0000000001")
    assert str(round_accrual(1)) == "1.0000000000"


@pytest.mark.parametrize("bad", [0.1, 1.0])
def test_floats_are_rejected_everywhere(bad):
    with pytest.raises(TypeError, match="float"):
        to_money(bad)
    with pytest.raises(TypeError):
        round_money(bad)
    with pytest.raises(TypeError):
        round_accrual(bad)
    with pytest.raises(TypeError):
        allocate(D("1.00"), [bad])


def test_to_money_converts_and_rounds():
    assert to_money(5) == D("5.00")
    assert to_money("12.345") == D("12.35")
    assert to_money(" 3 ") == D("3.00")
    assert to_money(D("-1.005")) == D("-1.01")
    assert str(to_money(D("1.5"))) == "1.50"


@pytest.mark.parametrize("bad", ["abc", "", "NaN", "Infinity", D("NaN"), D("-Infinity")])
def test_to_money_rejects_non_numbers(bad):
    with pytest.raises(ValueError):
        to_money(bad)


def test_to_money_rejects_other_types():
    with pytest.raises(TypeError):
        to_money(True)
    with pytest.raises(TypeError):
        to_money([1])


@pytest.mark.parametrize(
    "value, expected",
    [
        (D("1.23"), True),
        (D("1.5"), True),
        (D("1.500"), True),  # the value has 1 decimal place
        (D("-7"), True),
        (D("1E+3"), True),
        (D("1.234"), False),
        (D("NaN"), False),
        (D("Infinity"), False),
        (1, False),  # money is a Decimal
        (1.0, False),
        ("1.00", False),
    ],
)
def test_is_money(value, expected):
    assert is_money(value) is expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1234.56", D("1234.56")),
        ("1234.5", D("1234.50")),
        ("1234", D("1234.00")),
        (" 0.07 ", D("0.07")),
        ("+3.10", D("3.10")),
        (".5", D("0.50")),
        ("0", D("0.00")),
        ("-0.00", D("0.00")),
    ],
)
def test_parse_money_accepts_plain_amounts(text, expected):
    result = parse_money(text)
    assert result == expected
    assert str(result) == str(expected)


@pytest.mark.parametrize(
    "text, message",
    [
        ("abc", "not a number"),
        ("", "not a number"),
        ("12,50", "not a number"),
        ("$5", "not a number"),
        ("NaN", "NaN and Infinity"),
        ("-inf", "NaN and Infinity"),
        ("1.234", "more than 2 decimal places"),
        ("1.500", "more than 2 decimal places"),
        ("1e3", "plain decimal notation"),
        ("1_000", "plain decimal notation"),
        ("-5.00", "negative amount not allowed"),
    ],
)
def test_parse_money_rejects_with_a_clear_message(text, message):
    with pytest.raises(ValueError, match=message):
        parse_money(text)


def test_parse_money_negative_when_allowed():
    assert parse_money("-5.5", allow_negative=True) == D("-5.50")


def test_parse_money_needs_a_string():
    with pytest.raises(TypeError):
        parse_money(D("1"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value, text",
    [
        (D("1234.56"), "$1,234.56"),
        (D("0"), "$0.00"),
        (D("-1234.5"), "-$1,234.50"),
        (D("1000000"), "$1,000,000.00"),
        (D("0.005"), "$0.01"),
        (D("-0.001"), "$0.00"),
        (12, "$12.00"),
    ],
)
def test_format_usd(value, text):
    assert format_usd(value) == text


def test_allocate_examples():
    assert allocate(D("100.00"), [1, 1, 1]) == [D("33.34"), D("33.33"), D("33.33")]
    assert allocate(D("100.00"), [1, 2]) == [D("33.33"), D("66.67")]
    assert allocate(D("10.00"), [D("0.5"), 0, D("1.5")]) == [D("2.50"), D("0.00"), D("7.50")]
    assert allocate(D("-0.05"), [1, 1]) == [D("-0.03"), D("-0.02")]
    assert allocate(D("0.01"), [1, 1, 1]) == [D("0.01"), D("0.00"), D("0.00")]
    assert allocate(5, [3, 1]) == [D("3.75"), D("1.25")]


@pytest.mark.parametrize(
    "total, weights",
    [
        (D("1.00"), []),
        (D("1.00"), [0, 0]),
        (D("1.00"), [1, -1]),
        (D("1.00"), [D("NaN")]),
        (D("1.001"), [1]),
    ],
)
def test_allocate_rejects_bad_input(total, weights):
    with pytest.raises(ValueError):
        allocate(total, weights)


@PROPERTY
@given(
    total=cents,
    weights=st.lists(
        st.integers(min_value=0, max_value=10**6).map(lambda w: D(w).scaleb(-3)), min_size=1, max_size=12
    ).filter(lambda ws: sum(ws) > 0),
)
def test_allocate_sums_exactly_and_stays_within_a_cent(total, weights):
    parts = allocate(total, weights)
    assert sum(parts) == total
    assert all(part.as_tuple().exponent == -2 for part in parts)
    weight_sum = sum(Fraction(w) for w in weights)
    for part, weight in zip(parts, weights, strict=True):
        exact_share = Fraction(total) * Fraction(weight) / weight_sum
        assert abs(Fraction(part) - exact_share) < Fraction(1, 100)


@PROPERTY
@given(value=st.decimals(min_value=-(10**9), max_value=10**9, allow_nan=False, allow_infinity=False, places=6))
def test_round_money_is_nearest_cent_and_idempotent(value):
    rounded = round_money(value)
    assert is_money(rounded) and rounded.as_tuple().exponent == -2
    assert abs(rounded - value) <= D("0.005")
    assert round_money(rounded) == rounded
    assert to_money(str(value)) == rounded


@PROPERTY
@given(amount=cents)
def test_parse_and_format_round_trip(amount):
    assert parse_money(str(amount), allow_negative=True) == amount
    assert parse_money(format_usd(amount).replace("$", "").replace(",", ""), allow_negative=True) == amount


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        (Decimal("-1234.5"), "USD", "-$1,234.50"),
        (Decimal("-1234.5"), "EUR", "-1,234.50 EUR"),
        (Decimal("1500"), "JPY", "1,500 JPY"),
        (Decimal("0.125"), "GBP", "0.13 GBP"),
    ],
)
def test_format_money_writes_each_currency_in_its_minor_units(value, currency, expected):
    assert format_money(value, currency) == expected
