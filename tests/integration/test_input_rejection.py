"""The causes of 500 the fuzzer found (issue 10, A5/A6), each a clear 4xx on the real stack that writes nothing."""

import json
import time
import uuid

import pytest
from sqlalchemy import text

from tests.conftest import assert_error, make_org, open_account
from tests.integration.test_documents import PDF, upload
from tests.integration.test_loans import FINAL, apply, decide, level, rule, wait_loan, waiting_on


async def count(db, table: str, where: str = "TRUE", **params) -> int:
    async with db.session() as session:
        return (await session.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"), params)).scalar_one()


@pytest.fixture(scope="module")
async def org(http, su):
    return await make_org(http, su)


# --- the bank webhook's headers ----------------------------------------------------------------------------------


async def test_a_non_ascii_bank_signature_is_401_and_records_nothing(http, db):
    before = await count(db, "bank_events")
    body = json.dumps({"event_id": f"evt-{uuid.uuid4().hex}", "type": "entry.settled", "trace_number": "1"})
    response = await http.post(
        "/api/v1/webhooks/bank",
        content=body,
        headers={"X-Bank-Timestamp": str(int(time.time())), "X-Bank-Signature": "v1=\xe9\xe9".encode("latin-1")},
    )
    assert_error(response, 401, "invalid_signature")
    assert await count(db, "bank_events") == before


async def test_a_400_digit_bank_timestamp_is_401_and_records_nothing(http, db):
    before = await count(db, "bank_events")
    for timestamp in ("9" * 400, "-12", "1_700_000_000", "١٧٠٠٠٠٠٠٠٠"):
        response = await http.post(
            "/api/v1/webhooks/bank",
            content=b"{}",
            headers={"X-Bank-Timestamp": timestamp.encode(), "X-Bank-Signature": "v1=00"},
        )
        assert_error(response, 401, "invalid_signature")
    assert await count(db, "bank_events") == before


# --- NUL and other control characters ----------------------------------------------------------------------------


async def test_a_nul_in_a_json_string_field_is_422_and_writes_nothing(http, su, db, org):
    before = await count(db, "organizations")
    assert_error(
        await http.post("/api/v1/organizations", headers=su, json={"name": "Nul\x00Org"}), 422, "validation_error"
    )
    assert await count(db, "organizations") == before
    accounts = await count(db, "ledger_accounts", "org_id = :org", org=uuid.UUID(org.id))
    assert_error(
        await http.post("/api/v1/accounts", headers=su, json={"name": "a\x00b", "type": "checking", "org_id": org.id}),
        422,
        "validation_error",
    )
    assert await count(db, "ledger_accounts", "org_id = :org", org=uuid.UUID(org.id)) == accounts
    users = await count(db, "users")
    assert_error(
        await http.post(
            "/api/v1/users",
            headers=su,
            json={
                "email": f"nul-{uuid.uuid4().hex[:6]}@tests.example",
                "full_name": "Nul\x00",
                "password": "a-long-password-1",
                "role": "member",
                "org_id": org.id,
            },
        ),
        422,
        "validation_error",
    )
    assert await count(db, "users") == users


@pytest.mark.parametrize(
    "name",
    ["Riverside \u202eCU\u202c", "River\u200bside", "\u2066Riverside\u2069", "Riverside\ufeff", "\u202d"],
    ids=["override", "zero-width-space", "isolate", "bom", "alone"],
)
async def test_a_name_that_would_read_other_than_it_is_is_422_and_writes_nothing(http, su, db, name):
    """Bidirectional overrides and invisible characters: a name that displays as another organization's."""
    before = await count(db, "organizations")
    refused = assert_error(await http.post("/api/v1/organizations", headers=su, json={"name": name}), 422)
    assert "bidirectional" in str(refused["details"]), refused
    assert await count(db, "organizations") == before


async def test_joiners_and_marks_that_scripts_and_emoji_need_are_kept(http, su):
    for name in (
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 CU",
        "Family \U0001f468\u200d\U0001f469\u200d\U0001f467 CU",
        "\u05d0\u200f CU",
    ):
        created = await http.post("/api/v1/organizations", headers=su, json={"name": f"{name} {uuid.uuid4().hex[:6]}"})
        assert created.status_code == 201, created.text
        assert created.json()["name"].startswith(name)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/organizations?name=%00",
        "/api/v1/accounts?type=%00",
        "/api/v1/accounts?name=x%00",
        "/api/v1/users?email=%00",
        "/api/v1/audit?entity_id=%00",
        "/api/v1/payments?return_code=%00",
        "/api/v1/loan-products?name=%00",
        "/api/v1/bank-events?trace_number=%00",
    ],
)
async def test_a_nul_in_a_query_filter_is_422(http, su, path):
    assert_error(await http.get(path, headers=su), 422, "validation_error")


async def test_a_nul_in_the_login_form_is_422(http):
    for form in (
        {"username": "root\x00@tests.example", "password": "x"},
        {"username": "a@b.example", "password": "\x00"},
    ):
        assert_error(await http.post("/api/v1/auth/login", data=form), 422, "validation_error")


async def test_a_lone_surrogate_in_the_refresh_token_is_422_and_revokes_nothing(http, db):
    before = await count(db, "refresh_tokens", "revoked_at IS NOT NULL")
    response = await http.post(
        "/api/v1/auth/refresh", content=b'{"refresh_token": "\\ud800"}', headers={"Content-Type": "application/json"}
    )
    assert_error(response, 422, "validation_error")
    assert await count(db, "refresh_tokens", "revoked_at IS NOT NULL") == before


# --- offset past a BIGINT on every list --------------------------------------------------------------------------


async def test_an_offset_of_2_63_is_422_on_every_list(http, su, org):
    schema = (await http.get("/openapi.json")).json()
    lists = [
        path
        for path, operations in schema["paths"].items()
        if any(p["name"] == "offset" for p in operations.get("get", {}).get("parameters", []))
    ]
    assert len(lists) >= 15
    account = await open_account(http, su, org.id)
    document = await upload(http, su, org.users["member"]["id"], PDF)
    assert document.status_code == 201, document.text
    subscription = await http.post(
        "/api/v1/webhook-subscriptions",
        headers={**org.headers["org_admin"], "Idempotency-Key": uuid.uuid4().hex},
        json={"url": "https://erp.example/hooks", "event_types": ["payment.status_changed"]},
    )
    assert subscription.status_code == 201, subscription.text
    ids = {
        "account_id": account["id"],
        "document_id": document.json()["id"],
        "subscription_id": subscription.json()["id"],
    }
    # The lists under a member's rewards account or an import: an id of nothing (404 once the offset is valid).
    nothing = {"/api/v1/reward-accounts/", "/api/v1/transaction-imports/"}
    for path in lists:
        unknown = any(path.startswith(prefix) for prefix in nothing)
        url = (
            path.format(**ids, import_id=uuid.uuid4())
            if not unknown
            else path.format(account_id=uuid.uuid4(), import_id=uuid.uuid4())
        )
        assert_error(await http.get(url, headers=su, params={"offset": 2**63}), 422, "validation_error")
        valid = (await http.get(url, headers=su, params={"offset": 2**63 - 1})).status_code
        assert valid == (404 if unknown else 200), url


# --- an unknown organization -------------------------------------------------------------------------------------


async def test_an_external_account_for_an_unknown_org_is_422_and_writes_nothing(http, su, db):
    before = await count(db, "external_accounts")
    unknown = str(uuid.uuid4())
    response = await http.post(
        "/api/v1/external-accounts",
        headers=su,
        json={
            "holder_name": "Nobody",
            "routing_number": "021000021",
            "account_number": "000123456789",
            "account_type": "checking",
            "org_id": unknown,
        },
    )
    assert_error(response, 422, "unknown_organization")
    assert_error(
        await http.post(
            "/api/v1/external-accounts/link", headers=su, json={"public_token": "public-sandbox-x", "org_id": unknown}
        ),
        422,
        "unknown_organization",
    )
    assert await count(db, "external_accounts") == before


# --- information on a declined loan ------------------------------------------------------------------------------


@pytest.fixture
async def bank(http, su):
    org = await make_org(http, su, roles=("org_admin", "member", "loan_officer"))
    org.account = await open_account(http, su, org.id, org.users["member"]["id"])
    return org


async def test_information_on_a_declined_loan_is_409(http, su, sandbox_url, bank, product):
    member_type = await rule(http, su, [level("loan_officer")])
    loan = await apply(http, sandbox_url, bank, product, member_type=member_type)
    request_id = (await waiting_on(http, su, loan["id"], 1, "loan_officer"))["request_id"]
    rejected = await decide(http, bank.headers["loan_officer"], request_id, "reject", "Income too low")
    assert rejected.status_code == 200, rejected.text
    assert (await wait_loan(http, su, loan["id"], FINAL))["status"] in ("declined", "rejected")
    response = await http.post(
        f"/api/v1/loans/{loan['id']}/information", headers=bank.headers["member"], json={"text": "Payslips attached"}
    )
    assert_error(response, 409)


# --- money, rates and dates (A6) ---------------------------------------------------------------------------------


async def test_lenient_money_is_422_and_deposits_nothing(http, su, org, db):
    account = await open_account(http, su, org.id)
    for amount in ("١٢٣", "1_000", " 1 ", "-0", "1e3"):
        response = await http.post(
            f"/api/v1/accounts/{account['id']}/deposits",
            json={"amount": amount},
            headers={**su, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert_error(response, 422, "validation_error")
    assert await count(db, "postings", "account_id = :id", id=uuid.UUID(account["id"])) == 0


async def test_a_negative_zero_rate_or_fee_is_422_and_creates_no_product(http, su, db):
    before = await count(db, "loan_products")
    base = {
        "name": f"Negzero {uuid.uuid4().hex[:6]}",
        "annual_rate": "0.05",
        "min_term": 6,
        "max_term": 36,
        "min_amount": "1000.00",
        "max_amount": "5000.00",
        "amortization": "declining_balance",
    }
    for change in ({"annual_rate": "-0"}, {"late_fee": "-0"}, {"annual_rate": "-0.0"}):
        assert_error(
            await http.post("/api/v1/loan-products", headers=su, json={**base, **change}), 422, "validation_error"
        )
    assert await count(db, "loan_products") == before


async def test_a_bill_due_on_9999_12_31_is_422_and_creates_no_bill(http, org, db):
    before = await count(db, "bills")
    response = await http.post(
        "/api/v1/bills",
        headers=org.headers["member"],
        json={"payee_name": "Power", "amount": "10.00", "due_date": "9999-12-31"},
    )
    assert_error(response, 422, "validation_error")
    assert await count(db, "bills") == before
