"""The exchange-rate pieces without a stack: the sandbox's v6 answers, the activity's parsing (Decimal straight from
the JSON text, the provider's refusals non-retryable), ISO 4217 checking and the one rounding, half to even."""

import json
from decimal import Decimal

import pytest
from temporalio.exceptions import ApplicationError

from activities.fx import PROVIDER_REFUSED, parse_latest
from domain.fx import iso_currency, round_money
from sandbox.fx import FxState
from sandbox.settings import SandboxSettings


def test_the_sandbox_answers_as_the_provider_does():
    state = FxState(SandboxSettings())
    status, body = state.latest("sandbox-fx-key", "EUR")
    assert status == 200 and body["result"] == "success" and body["base_code"] == "EUR"
    assert body["conversion_rates"]["EUR"] == 1
    assert Decimal(str(body["conversion_rates"]["USD"])) == Decimal("1.096130659")  # 1 / 0.9123, 10 digits
    assert body["time_next_update_unix"] - body["time_last_update_unix"] == 86400
    assert state.latest("wrong", "EUR") == (403, {"result": "error", "error-type": "invalid-key"})
    assert state.latest("sandbox-fx-key", "XYZ") == (404, {"result": "error", "error-type": "unsupported-code"})


def test_rates_are_parsed_as_decimals_and_refusals_are_final():
    text = (
        '{"result": "success", "base_code": "USD", "time_last_update_unix": 1796169601, '
        '"conversion_rates": {"USD": 1, "EUR": 0.9123, "JPY": 151.37}}'
    )
    base, updated, rates = parse_latest(text, 200)
    assert base == "USD" and updated.isoformat() == "2026-12-02T00:00:01+00:00"
    assert rates == {"USD": Decimal(1), "EUR": Decimal("0.9123"), "JPY": Decimal("151.37")}
    for body, error_type in (
        ({"result": "error", "error-type": "invalid-key"}, "invalid-key"),
        ({"result": "success", "base_code": "USD"}, None),  # not the documented shape
        ({"result": "success", "base_code": "USD", "time_last_update_unix": 1, "conversion_rates": {"EUR": -1}}, None),
    ):
        with pytest.raises(ApplicationError) as refused:
            parse_latest(json.dumps(body), 403)
        assert refused.value.type == PROVIDER_REFUSED and refused.value.non_retryable
        assert refused.value.details[0]["error_type"] == error_type


def test_iso_codes_and_rounding_once_half_to_even():
    assert iso_currency(" jpy ") == "JPY"
    for bad in ("XYZ", "XAU", "US"):
        with pytest.raises(ValueError):
            iso_currency(bad)
    assert round_money(Decimal("150.5"), "JPY") == Decimal("150")
    assert round_money(Decimal("451.5"), "JPY") == Decimal("452")
    assert round_money(Decimal("0.125"), "USD") == Decimal("0.12")
    assert round_money(Decimal("1.0005"), "KWD") == Decimal("1.000")
