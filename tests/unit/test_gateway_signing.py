"""The gateway's webhook signature as the sandbox makes it and as the API checks it (HMAC-SHA512 of the raw body), and
the sandbox's reading of an amount (minor units or a decimal string)."""

import pytest

from api.errors import AppError
from core.config import Settings
from domain.gateway import check_signature, expected_signature
from sandbox.gateway import minor_units, sign

BODY = b'{"id":"evt_1","event":"charge.success","data":{"reference":"gw_1","amount":1250,"currency":"USD"}}'


def test_the_sandbox_signs_as_the_api_checks():
    settings = Settings(gateway_secret_key="sk_test_one")
    assert sign("sk_test_one", BODY) == expected_signature("sk_test_one", BODY)
    check_signature(settings, BODY, sign("sk_test_one", BODY))


@pytest.mark.parametrize(
    "signature",
    [
        "",
        sign("sk_test_other", BODY),
        sign("sk_test_one", BODY + b" "),  # another body
        sign("sk_test_one", BODY).upper(),
        "é" * 128,  # not ASCII: refused, not a crash
    ],
)
def test_any_other_signature_is_a_401(signature):
    with pytest.raises(AppError) as refused:
        check_signature(Settings(gateway_secret_key="sk_test_one"), BODY, signature)
    assert refused.value.status == 401


@pytest.mark.parametrize(
    ("amount", "minor"),
    [
        (1250, 1250),
        ("12.50", 1250),
        ("12", 1200),
        ("0.01", 1),
        (0, None),
        ("-1.00", None),
        ("1e3", None),
        ("12.345", None),
        (True, None),
        (10**15, None),
    ],
)
def test_amounts_in_minor_units_or_as_a_decimal_string(amount, minor):
    assert minor_units(amount) == minor
