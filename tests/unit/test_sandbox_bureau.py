"""The sandbox's credit bureau, in-process over ASGI (the sandbox itself is under test, so that is the real thing).

Expected scores come from an independent reading of the documented mapping, not from sandbox.bureau.
"""

import hashlib
import uuid
from datetime import datetime

import httpx
import pytest

from sandbox.app import create_app
from sandbox.settings import SandboxSettings

API_KEY = "sandbox-bureau-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
REPORT_FIELDS = {
    "report_id",
    "applicant_id",
    "score",
    "band",
    "open_tradelines",
    "delinquencies",
    "bankruptcy",
    "generated_at",
}


def applicant(first_digit: str = "a") -> uuid.UUID:
    """A random applicant id with a chosen first hex digit ('f' means: no file)."""
    return uuid.UUID(first_digit + uuid.uuid4().hex[1:])


def documented_score(applicant_id: uuid.UUID) -> int:
    digest = hashlib.sha256(str(applicant_id).encode()).digest()
    return 300 + int.from_bytes(digest[:4], "big") % 551


def documented_band(score: int) -> str:
    return (
        "excellent"
        if score >= 750
        else "good"
        if score >= 700
        else "fair"
        if score >= 650
        else "poor"
        if score >= 580
        else "very_poor"
    )


def body(who: uuid.UUID, **overrides) -> dict:
    return {
        "applicant_id": str(who),
        "full_name": "Alice Example",
        "purpose": "loan",
        "amount": "12500.00",
        **overrides,
    }


def make_client(**settings) -> httpx.AsyncClient:
    app = create_app(SandboxSettings(**settings))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox")


@pytest.fixture
async def client():
    async with make_client() as c:
        yield c


async def report(client: httpx.AsyncClient, who: uuid.UUID, key: str | None = None, **overrides) -> httpx.Response:
    headers = AUTH | ({"Idempotency-Key": key} if key else {})
    return await client.post("/bureau/reports", json=body(who, **overrides), headers=headers)


async def requests_log(client: httpx.AsyncClient) -> list[dict]:
    return (await client.get("/bureau/reports")).json()["requests"]


# --- reports -----------------------------------------------------------------------------------------


async def test_report_shape_and_documented_score(client):
    who = applicant()
    r = await report(client, who)
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(got) == REPORT_FIELDS
    assert got["applicant_id"] == str(who)
    assert got["report_id"].startswith("rpt_")
    assert got["score"] == documented_score(who)
    assert got["band"] == documented_band(got["score"])
    assert isinstance(got["open_tradelines"], int) and 0 <= got["open_tradelines"] < 16
    assert isinstance(got["delinquencies"], int) and got["delinquencies"] >= 0
    assert isinstance(got["bankruptcy"], bool)
    assert datetime.fromisoformat(got["generated_at"]).tzinfo is not None


async def test_same_applicant_same_report_across_app_instances():
    applicants = [applicant(digit) for digit in "0123456789abcde" for _ in range(4)]
    seen = []
    for _ in range(2):
        async with make_client() as fresh:
            content = []
            for who in applicants:
                r = await report(fresh, who)
                assert r.status_code == 200, r.text
                content.append({k: v for k, v in r.json().items() if k not in {"report_id", "generated_at"}})
            seen.append(content)
    assert seen[0] == seen[1]
    assert [c["score"] for c in seen[0]] == [documented_score(who) for who in applicants]


async def test_uppercase_or_unhyphenated_id_is_the_same_applicant(client):
    who = applicant()
    scores = {
        (await report(client, who, applicant_id=form)).json()["score"] for form in (str(who), str(who).upper(), who.hex)
    }
    assert scores == {documented_score(who)}


async def test_scores_spread_and_bands_agree_with_the_rest_of_the_report(client):
    reports = [(await report(client, applicant())).json() for _ in range(300)]
    assert all(300 <= r["score"] <= 850 and r["band"] == documented_band(r["score"]) for r in reports)
    assert len({r["band"] for r in reports}) == 5
    assert all(r["delinquencies"] == 0 for r in reports if r["band"] == "excellent")
    assert all(r["band"] == "very_poor" for r in reports if r["bankruptcy"])
    assert any(r["bankruptcy"] for r in reports)


@pytest.mark.parametrize(
    "score, band",
    [
        (850, "excellent"),
        (750, "excellent"),
        (749, "good"),
        (700, "good"),
        (699, "fair"),
        (650, "fair"),
        (649, "poor"),
        (580, "poor"),
        (579, "very_poor"),
        (300, "very_poor"),
    ],
)
async def test_fixed_score_from_settings(score, band):
    who = applicant()
    async with make_client(bureau_fixed_scores={str(who): score}) as c:
        got = (await report(c, who)).json()
    assert (got["score"], got["band"]) == (score, band)


async def test_fixed_scores_through_control_merge_and_replace(client):
    first, second, no_file = applicant(), applicant(), applicant("f")
    r = await client.put("/bureau/_control", json={"fixed_scores": {str(first): 810, str(no_file): 610}})
    assert r.status_code == 200, r.text
    r = await client.put("/bureau/_control", json={"fixed_scores": {str(second): 455}})  # merged
    assert r.json()["fixed_scores"] == {str(first): 810, str(no_file): 610, str(second): 455}
    assert [(await report(client, who)).json()["score"] for who in (first, second, no_file)] == [810, 455, 610]

    r = await client.put("/bureau/_control", json={"fixed_scores": {str(first): None}})  # null removes one
    assert r.json()["fixed_scores"] == {str(no_file): 610, str(second): 455}
    assert (await report(client, first)).json()["score"] == documented_score(first)

    r = await client.put("/bureau/_control", json={"fixed_scores": {str(first): 700}, "fixed_scores_mode": "replace"})
    assert r.json()["fixed_scores"] == {str(first): 700}
    assert (await client.get("/bureau/_control")).json() == {
        "bureau_api_key": API_KEY,
        "fixed_scores": {str(first): 700},
        "forbidden": False,
    }
    assert (await report(client, second)).json()["score"] == documented_score(second)
    assert (await report(client, no_file)).status_code == 404


@pytest.mark.parametrize(
    "change",
    [
        {"fixed_scores": {"not-a-uuid": 700}},
        {"fixed_scores": {str(uuid.uuid4()): 299}},
        {"fixed_scores": {str(uuid.uuid4()): 851}},
        {"bureau_api_key": None},
        {"unknown": 1},
    ],
)
async def test_control_refuses_bad_changes(client, change):
    before = (await client.get("/bureau/_control")).json()
    assert (await client.put("/bureau/_control", json=change)).status_code == 422
    assert (await client.get("/bureau/_control")).json() == before


async def test_no_file_when_the_id_starts_with_f(client):
    for who in (applicant("f"), uuid.UUID("F" + uuid.uuid4().hex[1:].upper())):
        r = await report(client, who)
        assert (r.status_code, r.json()["error_code"]) == (404, "NO_FILE")


# --- authorization and validation --------------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", API_KEY, f"Basic {API_KEY}", f"Bearer {API_KEY} "])
async def test_needs_the_api_key(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    r = await client.post("/bureau/reports", json=body(applicant()), headers=headers)
    assert (r.status_code, r.json()["error_code"]) == (401, "UNAUTHORIZED")


async def test_unauthorized_is_checked_before_the_body(client):
    r = await client.post("/bureau/reports", content=b"{not json", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401


async def test_api_key_changes_through_control(client):
    assert (await client.put("/bureau/_control", json={"bureau_api_key": "rotated"})).status_code == 200
    assert (await report(client, applicant())).status_code == 401
    r = await client.post("/bureau/reports", json=body(applicant()), headers={"Authorization": "Bearer rotated"})
    assert r.status_code == 200


async def test_a_key_without_entitlement_is_403_until_restored(client):
    assert (await client.put("/bureau/_control", json={"forbidden": True})).json()["forbidden"] is True
    r = await report(client, applicant())
    assert (r.status_code, r.json()["error_code"]) == (403, "FORBIDDEN")
    assert (
        await client.post("/bureau/reports", json=body(applicant()), headers={"Authorization": "Bearer wrong"})
    ).status_code == 401  # the key comes first
    await client.put("/bureau/_control", json={"forbidden": False})
    assert (await report(client, applicant())).status_code == 200


@pytest.mark.parametrize(
    "overrides",
    [
        {"applicant_id": "not-a-uuid"},
        {"applicant_id": 42},
        {"amount": "-1.00"},
        {"amount": "0"},
        {"amount": "1.001"},
        {"amount": "NaN"},
        {"amount": "lots"},
        {"full_name": "  "},
        {"purpose": "vacation"},
        {"unexpected": True},
    ],
)
async def test_invalid_body_is_400(client, overrides):
    r = await report(client, applicant(), **overrides)
    assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_REQUEST"), r.text


@pytest.mark.parametrize("content", [b"", b"{not json", b"[]", b'{"applicant_id": null}'])
async def test_unparseable_or_incomplete_body_is_400(client, content):
    r = await client.post("/bureau/reports", content=content, headers=AUTH | {"Content-Type": "application/json"})
    assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_REQUEST")


async def test_amount_as_a_json_number_is_accepted(client):
    assert (await report(client, applicant(), amount=12500.5)).status_code == 200


# --- idempotency and the request log -----------------------------------------------------------------


async def test_same_key_returns_the_same_report(client):
    who = applicant()
    first = await report(client, who, key="credit-1")
    # A changed override would change a new report, so the replay visibly comes from storage.
    await client.put("/bureau/_control", json={"fixed_scores": {str(who): 333}})
    again = await report(client, who, key="credit-1", amount="12500")  # the same amount, written differently
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert (await report(client, who)).json()["score"] == 333
    assert [(e["idempotency_key"], e["replayed"]) for e in await requests_log(client)] == [
        ("credit-1", False),
        ("credit-1", True),
        (None, False),
    ]


async def test_without_a_key_every_request_is_a_new_report(client):
    who = applicant()
    ids = {(await report(client, who)).json()["report_id"] for _ in range(3)}
    assert len(ids) == 3


async def test_same_key_other_request_is_409(client):
    who = applicant()
    assert (await report(client, who, key="k")).status_code == 200
    for change in ({"amount": "1.00"}, {"applicant_id": str(applicant())}, {"full_name": "Bob"}):
        r = await report(client, who, key="k", **change)
        assert (r.status_code, r.json()["error_code"]) == (409, "IDEMPOTENCY_KEY_REUSED")


async def test_request_log_records_every_request_that_reached_the_bureau(client):
    ok, no_file = applicant(), applicant("f")
    first = (await report(client, ok, key="k1")).json()
    await report(client, no_file)
    await client.post("/bureau/reports", json=body(ok), headers={"Authorization": "Bearer wrong"})
    await report(client, ok, amount="-5")
    log = await requests_log(client)
    assert [(e["applicant_id"], e["status"], e["error_code"], e["report_id"]) for e in log] == [
        (str(ok), 200, None, first["report_id"]),
        (str(no_file), 404, "NO_FILE", None),
        (None, 401, "UNAUTHORIZED", None),
        (None, 400, "INVALID_REQUEST", None),
    ]  # ids of valid bodies only
    assert all(datetime.fromisoformat(e["received_at"]) for e in log)


# --- faults ------------------------------------------------------------------------------------------


async def test_fail_header_fails_the_request_before_the_bureau_sees_it(client):
    r = await client.post("/bureau/reports", json=body(applicant()), headers=AUTH | {"X-Sandbox-Fail": "503"})
    assert (r.status_code, r.json()["error_code"]) == (503, "INJECTED_FAULT")
    assert await requests_log(client) == []


async def test_fail_next_applies_to_reports_but_not_to_instrumentation(client):
    r = await client.put("/_control/faults", json={"fail_next": 1, "error_status": 502})
    assert r.status_code == 200
    # The log and the control routes are never faulted, so reading them leaves fail_next untouched.
    assert await requests_log(client) == []
    assert (await client.get("/bureau/_control")).status_code == 200
    assert (await report(client, applicant())).status_code == 502
    assert (await report(client, applicant())).status_code == 200
    assert len(await requests_log(client)) == 1
