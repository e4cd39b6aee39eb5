"""The one access policy (core/access.py) on the real stack: a member's bank account is theirs alone (A1), a hold
is released by hand only when placed by hand, by whoever placed it (A4), a member never reads another member's
approval (A7), bank-wide operations belong to bank operations, never to one organization's operator (A2/A7), and
every denial is a security event in the logs."""

import logging
import uuid

from sqlalchemy import text

from core import ledger
from tests.conftest import assert_error, bank_operations, make_org, make_user, open_account
from tests.integration.test_ach import link_external
from tests.integration.test_loans import apply, level, rule, waiting_on


def loan_body(product: dict, account: dict, **extra) -> dict:
    return {
        "product_id": product["id"],
        "amount": "5000.00",
        "term": 36,
        "purpose": "Car",
        "monthly_income": "20000.00",
        "monthly_debt": "300.00",
        "deposit_account_id": account["id"],
        **extra,
    }


async def loans_of(db, applicant_id: str) -> int:
    async with db.session() as session:
        return (
            await session.execute(text("SELECT count(*) FROM loans WHERE applicant_id = :a"), {"a": applicant_id})
        ).scalar_one()


async def test_a_member_cannot_name_another_members_bank_account_for_auto_debit_or_disbursement(
    http, su, sandbox_url, product, db
):
    org = await make_org(http, su, roles=("org_admin", "member", "loan_officer"))
    alice = org.users["member"]
    bob, _ = await make_user(http, su, "member", org.id)
    org.account = await open_account(http, su, org.id, alice["id"])
    bobs = await link_external(http, sandbox_url, org, institution="ins_1", owner_id=bob["id"])
    alices = await link_external(http, sandbox_url, org, institution="ins_2", owner_id=alice["id"])
    assert (bobs["owner_id"], alices["owner_id"]) == (bob["id"], alice["id"])
    organizations = await http.post(
        "/api/v1/external-accounts",
        headers=org.headers["org_admin"],
        json={
            "holder_name": "Org operating",
            "routing_number": "021000021",
            "account_number": "000123456789",
            "account_type": "checking",
        },
    )
    assert organizations.status_code == 201, organizations.text
    member_type = await rule(http, su, [level("loan_officer")])
    await http.patch(
        f"/api/v1/users/{alice['id']}", headers=org.headers["org_admin"], json={"member_type": member_type}
    )

    def as_(role: str) -> dict:
        return {**org.headers[role], "Idempotency-Key": uuid.uuid4().hex}

    # Alice names Bob's bank account: for auto-debit, or only to be paid out to (disbursement). Both refused.
    for extra in ({"external_account_id": bobs["id"], "auto_debit": True}, {"external_account_id": bobs["id"]}):
        assert_error(
            await http.post("/api/v1/loans", headers=as_("member"), json=loan_body(product, org.account, **extra)), 403
        )
    # Nor the organization's own bank account.
    assert_error(
        await http.post(
            "/api/v1/loans",
            headers=as_("member"),
            json=loan_body(product, org.account, external_account_id=organizations.json()["id"]),
        ),
        403,
    )
    # A loan officer applying for Alice may name only Alice's.
    assert_error(
        await http.post(
            "/api/v1/loans",
            headers=as_("loan_officer"),
            json=loan_body(
                product, org.account, applicant_id=alice["id"], external_account_id=bobs["id"], auto_debit=True
            ),
        ),
        403,
    )
    assert await loans_of(db, alice["id"]) == 0  # nothing written
    # Her own is fine, from her or from the officer.
    loan = await apply(http, sandbox_url, org, product, external_account_id=alices["id"], auto_debit=True)
    assert loan["external_account_id"] == alices["id"]
    loan = await apply(http, sandbox_url, org, product, as_role="loan_officer", external_account_id=alices["id"])
    assert loan["external_account_id"] == alices["id"]


async def test_operators_release_only_the_holds_they_placed_never_a_payments_hold(http, su, db):
    org = await make_org(http, su, roles=("operator", "member"))
    _other_operator, other = await make_user(http, su, "operator", org.id)
    account = await open_account(http, su, org.id, org.users["member"]["id"], deposit="500.00")
    placed = await http.post(
        f"/api/v1/accounts/{account['id']}/holds",
        headers={**org.headers["operator"], "Idempotency-Key": uuid.uuid4().hex},
        json={"amount": "50.00", "reason": "card"},
    )
    assert placed.status_code == 201, placed.text
    # The holds a payment's workflow places itself (an ACH credit's funds, an ACH debit's availability), with the
    # very ledger call and keys the workflow's activities use.
    payment = uuid.uuid4()
    async with db.session() as session, session.begin():
        funds, _ = await ledger.place_hold(
            session,
            account_id=uuid.UUID(account["id"]),
            amount=10,
            reason=f"ACH credit {payment}",
            idempotency_key=f"payment:{payment}:hold",
        )
        availability, _ = await ledger.place_hold(
            session,
            account_id=uuid.UUID(account["id"]),
            amount=20,
            reason=f"ACH debit {payment}",
            idempotency_key=f"payment:{payment}:availability:1",
        )

    def release(hold_id) -> str:
        return f"/api/v1/accounts/{account['id']}/holds/{hold_id}/release"

    for hold_id in (funds, availability):
        for headers in (org.headers["operator"], su):
            assert_error(await http.post(release(hold_id), headers=headers), 403, "system_hold")
    assert_error(await http.post(release(placed.json()["id"]), headers=other), 403, "forbidden")
    held = (await http.get(f"/api/v1/accounts/{account['id']}", headers=su)).json()["held"]
    assert held == "80.00"  # all three still on
    released = await http.post(release(placed.json()["id"]), headers=org.headers["operator"])
    assert released.status_code == 200 and released.json()["status"] == "released", released.text
    assert (await http.get(f"/api/v1/accounts/{account['id']}", headers=su)).json()["held"] == "30.00"


async def test_a_member_gets_404_for_another_members_approval_request(http, su, sandbox_url, product):
    org = await make_org(http, su, roles=("org_admin", "member", "loan_officer"))
    _, bob = await make_user(http, su, "member", org.id)
    org.account = await open_account(http, su, org.id, org.users["member"]["id"])
    loan = await apply(http, sandbox_url, org, product, member_type=await rule(http, su, [level("loan_officer")]))
    state = await waiting_on(http, su, loan["id"], 1, "loan_officer")
    url = f"/api/v1/approvals/{state['request_id']}"
    # Bob's answer is the very body of a request that does not exist.
    mine = assert_error(await http.get(url, headers=bob), 404, "not_found")
    missing = str(uuid.uuid4())
    nobody = assert_error(await http.get(f"/api/v1/approvals/{missing}", headers=bob), 404, "not_found")
    assert mine["message"].replace(state["request_id"], missing) == nobody["message"]
    assert_error(await http.post(f"{url}/decisions", headers=bob, json={"decision": "approve"}), 404)
    for headers in (org.headers["member"], org.headers["loan_officer"], org.headers["org_admin"]):
        assert (await http.get(url, headers=headers)).status_code == 200


async def test_bank_wide_operations_belong_to_bank_operations_not_an_organizations_operator(http, su):
    org = await make_org(http, su, roles=("org_admin", "operator", "member"))
    operator = org.headers["operator"]
    assert_error(await http.get("/api/v1/ach/files", headers=operator), 403, "forbidden")
    assert_error(await http.get(f"/api/v1/ach/files/{uuid.uuid4()}", headers=operator), 403, "forbidden")
    assert_error(await http.post("/api/v1/statements/runs", headers=operator, json={"period": "2019-01"}), 403)
    assert_error(await http.get("/api/v1/interest-postings/2019-01", headers=operator), 403)
    for role in ("org_admin", "member"):
        assert_error(await http.get("/api/v1/ach/files", headers=org.headers[role]), 403)
        assert_error(
            await http.post("/api/v1/statements/runs", headers=org.headers[role], json={"period": "2019-01"}), 403
        )

    bank = await bank_operations(http, su)
    me = (await http.get("/api/v1/me", headers=bank)).json()
    assert me["role"] == "bank_operations" and me["org_id"] is None
    assert (await http.get("/api/v1/ach/files", headers=bank)).status_code == 200
    assert_error(await http.get(f"/api/v1/ach/files/{uuid.uuid4()}", headers=bank), 404, "not_found")
    assert_error(await http.get("/api/v1/interest-postings/1999-01", headers=bank), 404, "not_found")
    run = await http.post("/api/v1/statements/runs", headers=bank, json={"period": "2019-01"})
    assert run.status_code == 202 and run.json()["workflow_id"] == "statements-2019-01", run.text
    assert (await http.get("/api/v1/bank-events", headers=bank)).status_code == 200
    # Bank-wide operations, not members' money: no account, loan or payment of any organization.
    account = await open_account(http, su, org.id, org.users["member"]["id"])
    assert (await http.get("/api/v1/accounts", headers=bank)).json()["total"] == 0
    assert_error(await http.get(f"/api/v1/accounts/{account['id']}", headers=bank), 404)
    # Only a superuser makes one, and it belongs to no organization.
    assert_error(
        await http.post(
            "/api/v1/users",
            headers=org.headers["org_admin"],
            json={
                "email": f"bank-{uuid.uuid4().hex[:8]}@tests.example",
                "full_name": "Bank",
                "password": "a-long-test-password",
                "role": "bank_operations",
            },
        ),
        403,
    )


async def test_a_denial_is_logged_as_a_security_event(http, su, caplog):
    org, other = await make_org(http, su, roles=("member",)), await make_org(http, su, roles=("member",))
    account = await open_account(http, su, org.id, org.users["member"]["id"])
    caplog.set_level(logging.WARNING, logger="security")
    assert_error(await http.get(f"/api/v1/accounts/{account['id']}", headers=other.headers["member"]), 404)
    assert_error(await http.get("/api/v1/ach/files", headers=org.headers["member"]), 403)
    events = [r for r in caplog.records if r.name == "security" and r.getMessage() == "access_denied"]
    read = next(r for r in events if getattr(r, "entity_id", None) == account["id"])
    assert (read.user_id, read.role, read.org_id) == (other.users["member"]["id"], "member", other.id)
    assert (read.entity, read.action, read.status) == ("account", "read", 404)
    gated = next(r for r in events if getattr(r, "entity", None) == "ACH file")
    assert (gated.user_id, gated.action, gated.status) == (org.users["member"]["id"], "read", 403)
