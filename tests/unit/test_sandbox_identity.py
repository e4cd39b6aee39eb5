"""The sandbox's identity-verification service, in-process over ASGI: the same answer for the same input, by the
documented rules (sandbox/identity.py), behind its API key."""

from datetime import date

import httpx
import pytest

from sandbox.app import create_app
from sandbox.identity import VerificationRequest, screen
from sandbox.settings import SandboxSettings

KEY = "identity-test-key"
TODAY = date(2026, 12, 1)


def request(**changes) -> VerificationRequest:
    body = {
        "reference": "sub-1",
        "full_name": "Kim Member",
        "date_of_birth": "1990-04-01",
        "address": "1 Main St",
        "national_id_last4": "1234",
    }
    return VerificationRequest.model_validate({**body, **changes})


@pytest.mark.parametrize(
    ("changes", "result", "reasons", "hit"),
    [
        ({}, "pass", [], False),
        ({"national_id_last4": "0000"}, "fail", ["identity_mismatch"], False),
        ({"national_id_last4": "9999"}, "refer", ["thin_file"], False),
        ({"date_of_birth": "2010-01-01"}, "fail", ["underage"], False),
        ({"date_of_birth": "2008-12-02"}, "fail", ["underage"], False),  # 18 tomorrow
        ({"date_of_birth": "2008-12-01"}, "pass", [], False),  # 18 today
        ({"full_name": "  ivan   WATCHLIST "}, "refer", ["watchlist_hit"], True),
        ({"full_name": "Ivan Watchlist", "national_id_last4": "0000"}, "refer", ["watchlist_hit"], True),
    ],
)
def test_the_answer_follows_the_documented_rules(changes, result, reasons, hit):
    out = screen(request(**changes), TODAY)
    assert (out.result, out.reasons, out.watchlist_hit) == (result, reasons, hit)
    assert screen(request(**changes), TODAY) == out  # deterministic


async def test_the_api_wants_its_key_and_a_valid_body():
    app = create_app(SandboxSettings(identity_api_key=KEY))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as client:
        body = request().model_dump(mode="json")
        assert (await client.post("/identity/verifications", json=body)).status_code == 401
        auth = {"Authorization": f"Bearer {KEY}"}
        bad = await client.post("/identity/verifications", json={**body, "national_id_last4": "12"}, headers=auth)
        assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_REQUEST"
        extra = await client.post("/identity/verifications", json={**body, "ssn": "123456789"}, headers=auth)
        assert extra.status_code == 400
        ok = await client.post("/identity/verifications", json=body, headers=auth)
        assert ok.status_code == 200 and ok.json() == {
            "reference": "sub-1",
            "result": "pass",
            "reasons": [],
            "watchlist_hit": False,
        }
