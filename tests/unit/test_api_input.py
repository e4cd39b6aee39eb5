"""Money, rates, text and dates in the API's request models are strict (issue 10, A6): validated here on the
routers' own models, with no stack behind them."""

from datetime import date
from decimal import Decimal

import pytest
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from api.fields import SignedMoney
from api.routers.accounts import DepositIn, HoldIn
from api.routers.bills import BillIn
from api.routers.loan_products import LoanProductIn, LoanProductPatch
from api.routers.savings_products import SavingsProductIn
from api.routers.transfers import BookTransferIn
from api.routers.users import OrganizationIn

PRODUCT = {
    "name": "Personal",
    "annual_rate": "0.065",
    "min_term": 6,
    "max_term": 36,
    "min_amount": "1000.00",
    "max_amount": "25000.00",
    "amortization": "declining_balance",
    "late_fee": "25.00",
}
BILL = {"payee_name": "City Power", "amount": "84.20", "due_date": "2030-01-15"}
TRANSFER = {
    "from_account_id": "6f1c3c52-3d1e-4a53-9a4c-5d8f0b6a7e21",
    "to_account_id": "6f1c3c52-3d1e-4a53-9a4c-5d8f0b6a7e22",
    "amount": "10.00",
}


def refused(model, data: dict) -> list[ErrorDetails]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return caught.value.errors()


@pytest.mark.parametrize(
    "amount",
    [
        "١٢٣",
        "1_000",
        " 1 ",
        "1 ",
        "-0",
        "-5",
        "1e3",
        "0x10",
        "NaN",
        "Infinity",
        "1.001",
        "１２３",
        "+5",
        "",
        "1.",
        ".5",
        True,
    ],
)
def test_money_is_a_plain_ascii_decimal_with_two_places_at_most(amount):
    refused(DepositIn, {"amount": amount})
    refused(BookTransferIn, {**TRANSFER, "amount": amount})
    refused(HoldIn, {"amount": amount, "reason": "card"})


@pytest.mark.parametrize(
    "amount, expected", [("123", "123.00"), ("0.5", "0.50"), ("1000.25", "1000.25"), (5, "5.00"), (12.5, "12.50")]
)
def test_money_as_an_ascii_string_or_a_json_number_is_taken(amount, expected):
    assert str(DepositIn.model_validate({"amount": amount}).amount) == expected


@pytest.mark.parametrize(
    "field, value",
    [
        ("annual_rate", "-0"),
        ("annual_rate", -0.0),
        ("annual_rate", "٠.٠٥"),
        ("annual_rate", "0.05 "),
        ("annual_rate", "5e-2"),
        ("late_fee", "-0"),
        ("late_fee", "-0.00"),
        ("late_fee", -0.0),
        ("min_amount", "1_000"),
    ],
)
def test_a_negative_zero_rate_or_fee_and_lenient_numbers_are_refused(field, value):
    refused(LoanProductIn, {**PRODUCT, field: value})
    refused(LoanProductPatch, {field: value})  # the PATCH model refuses them too, before any merge


def test_a_zero_rate_and_a_zero_fee_are_taken():
    product = LoanProductIn.model_validate({**PRODUCT, "annual_rate": "0", "late_fee": "0"})
    assert (str(product.annual_rate), str(product.late_fee)) == ("0.000000", "0.00")


def test_savings_rates_and_tier_bounds_are_strict():
    refused(SavingsProductIn, {"name": "Saver", "annual_rate": "-0"})
    refused(
        SavingsProductIn,
        {"name": "Saver", "tiers": [{"up_to": "1_000", "rate": "0.01"}, {"up_to": None, "rate": "0.02"}]},
    )


@pytest.mark.parametrize("due", ["9999-12-31", "2199-12-31", "0001-01-01"])
def test_a_bill_due_date_out_of_the_business_range_is_refused(due):
    refused(BillIn, {**BILL, "due_date": due})


def test_a_bill_due_within_the_range_is_taken():
    assert BillIn.model_validate(BILL).due_date == date(2030, 1, 15)


@pytest.mark.parametrize("value", ["a\x00b", "line\x1bbreak", "del\x7f", "c1\x85", "lone \ud800 surrogate"])
def test_control_characters_and_lone_surrogates_are_refused_in_text(value):
    refused(OrganizationIn, {"name": value})
    refused(BillIn, {**BILL, "memo": value})
    refused(BookTransferIn, {**TRANSFER, "memo": value})


def test_ordinary_unicode_text_is_taken():
    assert OrganizationIn.model_validate({"name": "Caisse populaire Évangéline ١٢٣"}).name


def test_the_openapi_states_the_patterns():
    from api.fields import MONEY_PATTERN, RATE_PATTERN

    schema = LoanProductIn.model_json_schema()["properties"]
    assert {"type": "string", "pattern": RATE_PATTERN} in schema["annual_rate"]["anyOf"]
    assert {"type": "string", "pattern": MONEY_PATTERN} in schema["late_fee"]["anyOf"]
    assert "pattern" in schema["name"]


@pytest.mark.parametrize("amount", ["-5.00", "-0.01", "12.30", "0.00"])
def test_a_signed_amount_validated_twice_keeps_its_value(amount):
    """A model's SignedMoney handed to another model (a list's filters becoming an export's) is taken again as it is:
    a negative Decimal once failed the second validation."""
    adapter = TypeAdapter(SignedMoney)
    once = adapter.validate_python(amount)
    assert adapter.validate_python(once) == once == Decimal(amount)


@pytest.mark.parametrize("amount", [Decimal("NaN"), Decimal("-0"), Decimal("-5.001"), Decimal("-1E+20")])
def test_a_signed_decimal_out_of_the_rules_is_refused(amount):
    with pytest.raises(ValidationError):
        TypeAdapter(SignedMoney).validate_python(amount)
