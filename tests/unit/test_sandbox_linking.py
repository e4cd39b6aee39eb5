"""The sandbox's linking provider and fault injection, exercised in-process over ASGI.

This tests the sandbox itself, so an in-process transport is the real thing here; the main app's
integration tests talk to a running sandbox over real HTTP.
"""

import time
from datetime import datetime, timedelta

import httpx
import pytest

from sandbox.app import create_app
from sandbox.settings import SandboxSettings

CREDS = {"client_id": "backoffice", "secret": "sandbox-secret"}


def aba_checksum_ok(routing: str) -> bool:
    """Independent oracle for the ABA routing-number check digit."""
    d = [int(c) for c in routing]
    return len(d) == 9 and (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])) % 10 == 0


def make_client(**settings) -> httpx.AsyncClient:
    app = create_app(SandboxSettings(**settings))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox")


@pytest.fixture
async def client():
    async with make_client() as c:
        yield c


async def link_item(client: httpx.AsyncClient, institution_id: str = "ins_1") -> dict:
    """The whole Plaid-like flow; returns the exchange response."""
    r = await client.post(
        "/linking/link/token/create", json={**CREDS, "user": {"client_user_id": "member-1"}, "products": ["auth"]}
    )
    assert r.status_code == 200, r.text
    link_token = r.json()["link_token"]
    r = await client.post(
        "/linking/sandbox/public_token/create",
        json={**CREDS, "institution_id": institution_id, "link_token": link_token},
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        "/linking/item/public_token/exchange", json={**CREDS, "public_token": r.json()["public_token"]}
    )
    assert r.status_code == 200, r.text
    return r.json()


async def auth_get(client: httpx.AsyncClient, access_token: str) -> dict:
    r = await client.post("/linking/auth/get", json={**CREDS, "access_token": access_token})
    assert r.status_code == 200, r.text
    return r.json()


async def test_healthz(client):
    r = await client.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


async def test_whole_flow(client):
    r = await client.post(
        "/linking/link/token/create", json={**CREDS, "user": {"client_user_id": "m1"}, "products": ["auth"]}
    )
    body = r.json()
    assert body["link_token"].startswith("link-sandbox-")
    assert "expiration" in body

    exchanged = await link_item(client, "ins_1")
    assert exchanged["access_token"].startswith("access-sandbox-") and exchanged["item_id"]

    auth = await auth_get(client, exchanged["access_token"])
    assert auth["item"] == {"item_id": exchanged["item_id"], "institution_id": "ins_1"}
    assert [a["subtype"] for a in auth["accounts"]] == ["checking", "savings"]
    assert {a["type"] for a in auth["accounts"]} == {"depository"}
    numbers = {n["account_id"]: n for n in auth["numbers"]["ach"]}
    assert set(numbers) == {a["account_id"] for a in auth["accounts"]}
    for account in auth["accounts"]:
        number = numbers[account["account_id"]]["account"]
        assert number.isdigit() and 8 <= len(number) <= 12
        assert account["mask"] == number[-4:]
        assert account["name"] and account["official_name"]


async def test_link_token_expires_in_four_hours(client):
    before = datetime.now().astimezone()
    r = await client.post(
        "/linking/link/token/create", json={**CREDS, "user": {"client_user_id": "m1"}, "products": ["auth"]}
    )
    expiration = datetime.fromisoformat(r.json()["expiration"])
    assert timedelta(hours=4) - timedelta(minutes=1) < expiration - before <= timedelta(hours=4) + timedelta(minutes=1)


async def test_accounts_are_stable_per_item_and_distinct_between_items(client):
    first, second = await link_item(client, "ins_1"), await link_item(client, "ins_1")
    auth_first = await auth_get(client, first["access_token"])
    assert await auth_get(client, first["access_token"]) == auth_first  # same token, same accounts

    auth_second = await auth_get(client, second["access_token"])
    assert first["item_id"] != second["item_id"]
    assert {a["account_id"] for a in auth_first["accounts"]}.isdisjoint(
        a["account_id"] for a in auth_second["accounts"]
    )
    assert {n["account"] for n in auth_first["numbers"]["ach"]}.isdisjoint(
        n["account"] for n in auth_second["numbers"]["ach"]
    )


async def test_public_token_is_single_use(client):
    r = await client.post("/linking/sandbox/public_token/create", json={**CREDS, "institution_id": "ins_2"})
    public_token = r.json()["public_token"]
    first = await client.post("/linking/item/public_token/exchange", json={**CREDS, "public_token": public_token})
    again = await client.post("/linking/item/public_token/exchange", json={**CREDS, "public_token": public_token})
    assert first.status_code == 200
    assert again.status_code == 400
    assert again.json()["error_code"] == "INVALID_PUBLIC_TOKEN"
    assert set(again.json()) == {"error_type", "error_code", "error_message"}


async def test_public_token_expires_after_30_minutes():
    app = create_app(SandboxSettings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as client:
        r = await client.post("/linking/sandbox/public_token/create", json={**CREDS, "institution_id": "ins_1"})
        real_clock = app.state.linking.clock
        app.state.linking.clock = lambda: real_clock() + timedelta(minutes=31)
        r = await client.post(
            "/linking/item/public_token/exchange", json={**CREDS, "public_token": r.json()["public_token"]}
        )
        assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_PUBLIC_TOKEN")


@pytest.mark.parametrize(
    "path,extra",
    [
        ("/linking/link/token/create", {"user": {"client_user_id": "m1"}, "products": ["auth"]}),
        ("/linking/sandbox/public_token/create", {"institution_id": "ins_1"}),
        ("/linking/item/public_token/exchange", {"public_token": "public-sandbox-x"}),
        ("/linking/auth/get", {"access_token": "access-sandbox-x"}),
    ],
)
async def test_bad_secret_is_rejected_everywhere(client, path, extra):
    r = await client.post(path, json={**CREDS, "secret": "wrong", **extra})
    assert r.status_code == 401
    assert r.json()["error_code"] == "INVALID_API_KEYS"
    assert r.json()["error_type"] == "INVALID_INPUT"


async def test_missing_credentials_get_a_plaid_style_400(client):
    r = await client.post("/linking/auth/get", json={"access_token": "access-sandbox-x"})
    assert r.status_code == 400
    assert r.json()["error_code"] == "MISSING_FIELDS"
    assert "secret" in r.json()["error_message"]


async def test_unknown_institution(client):
    r = await client.post("/linking/sandbox/public_token/create", json={**CREDS, "institution_id": "ins_999"})
    assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_INSTITUTION")


async def test_invalid_access_token(client):
    r = await client.post("/linking/auth/get", json={**CREDS, "access_token": "access-sandbox-nope"})
    assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_ACCESS_TOKEN")


async def test_institutions_listing(client):
    r = await client.get("/linking/institutions")
    names = {i["institution_id"]: i["name"] for i in r.json()["institutions"]}
    assert names["ins_1"] == "First Platypus Bank"
    assert names["ins_2"] == "Tartan Credit Union"
    assert names["ins_3"] == "Broken Routing Bank"


@pytest.mark.parametrize("institution_id,routing_valid", [("ins_1", True), ("ins_2", True), ("ins_3", False)])
async def test_aba_check_digit_of_routing_numbers(client, institution_id, routing_valid):
    auth = await auth_get(client, (await link_item(client, institution_id))["access_token"])
    for numbers in auth["numbers"]["ach"]:
        assert aba_checksum_ok(numbers["routing"]) is routing_valid
        assert aba_checksum_ok(numbers["wire_routing"]) is routing_valid


async def test_every_listed_routing_number_except_broken_bank_passes_aba(client):
    r = await client.get("/linking/institutions")
    for institution in r.json()["institutions"]:
        for routing in institution["routing_numbers"]:
            assert aba_checksum_ok(routing) is (institution["institution_id"] != "ins_3")


# --- faults ---------------------------------------------------------------------------------------


async def test_fail_next_fails_exactly_n_service_requests(client):
    r = await client.put("/_control/faults", json={"fail_next": 2, "error_status": 503})
    assert r.json() == {"latency_ms": 0, "error_rate": 0.0, "error_status": 503, "fail_next": 2}

    # Health and control are never faulted, and don't consume fail_next.
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/_control/faults")).json()["fail_next"] == 2

    for _ in range(2):
        r = await client.get("/linking/institutions")
        assert r.status_code == 503
        assert r.json()["error_code"] == "INJECTED_FAULT" and r.json()["error_message"]
    assert (await client.get("/linking/institutions")).status_code == 200
    assert (await client.get("/_control/faults")).json()["fail_next"] == 0


async def test_fail_header_fails_only_that_request(client):
    r = await client.post(
        "/linking/sandbox/public_token/create",
        json={**CREDS, "institution_id": "ins_1"},
        headers={"X-Sandbox-Fail": "429"},
    )
    assert (r.status_code, r.json()["error_code"]) == (429, "INJECTED_FAULT")
    r = await client.post("/linking/sandbox/public_token/create", json={**CREDS, "institution_id": "ins_1"})
    assert r.status_code == 200


async def test_fail_header_with_non_error_status_is_a_400(client):
    r = await client.get("/linking/institutions", headers={"X-Sandbox-Fail": "200"})
    assert (r.status_code, r.json()["error_code"]) == (400, "INJECTED_FAULT")


async def test_error_rate_one_always_fails_and_zero_never():
    async with make_client(error_rate=1.0, error_status=502) as client:
        assert [(await client.get("/linking/institutions")).status_code for _ in range(5)] == [502] * 5
        await client.put("/_control/faults", json={"error_rate": 0.0})
        assert [(await client.get("/linking/institutions")).status_code for _ in range(5)] == [200] * 5


async def test_seeded_error_rate_is_reproducible():
    async def pattern() -> list[int]:
        async with make_client(error_rate=0.5, seed=42) as client:
            return [(await client.get("/linking/institutions")).status_code for _ in range(20)]

    first = await pattern()
    assert first == await pattern()
    assert {200, 500} == set(first)


async def test_control_rejects_out_of_range_values(client):
    assert (await client.put("/_control/faults", json={"error_rate": 1.5})).status_code == 422
    assert (await client.put("/_control/faults", json={"error_status": 200})).status_code == 422


async def test_configured_latency_is_applied():
    async with make_client(latency_ms=150) as client:
        started = time.monotonic()
        r = await client.get("/linking/institutions")
        assert r.status_code == 200
        assert time.monotonic() - started >= 0.150


async def test_latency_set_at_runtime_is_applied(client):
    await client.put("/_control/faults", json={"latency_ms": 120})
    started = time.monotonic()
    await client.post("/linking/sandbox/public_token/create", json={**CREDS, "institution_id": "ins_1"})
    assert time.monotonic() - started >= 0.120
