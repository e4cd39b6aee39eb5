"""Reversals of posted entries, maker-checker (domain/reversals.py, workflows/reversal.py): the maker never checks,
the opposite entry posts once and links to the original, and a second reversal is refused."""

import asyncio
import uuid
from decimal import Decimal

from sqlalchemy import text

from tests.conftest import assert_error, make_org, make_user, open_account
from tests.polling import poll


def keyed(headers: dict, key: str | None = None) -> dict:
    return {**headers, "Idempotency-Key": key or uuid.uuid4().hex}


async def deposit_entry(http, su, account: dict, amount: str) -> str:
    response = await http.post(
        f"/api/v1/accounts/{account['id']}/deposits", headers=keyed(su), json={"amount": amount, "memo": "Teller"}
    )
    assert response.status_code == 201, response.text
    entries = (await http.get(f"/api/v1/accounts/{account['id']}/entries", headers=su)).json()["items"]
    return entries[0]["entry_id"]


async def balance(http, su, account: dict) -> Decimal:
    return Decimal((await http.get(f"/api/v1/accounts/{account['id']}", headers=su)).json()["ledger_balance"])


async def entry(http, headers, entry_id: str) -> dict:
    response = await http.get(f"/api/v1/journal-entries/{entry_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def approval_of(http, headers, entry_id: str) -> str:
    """The checker's approval request of the entry's newest reversal request, once it is open."""
    view = await poll(
        lambda: entry(http, headers, entry_id),
        lambda e: e["reversals"] and e["reversals"][0]["approval_request_id"],
        30,
        "the reversal's approval request never appeared",
    )
    request_id = view["reversals"][0]["approval_request_id"]
    await poll(
        lambda: http.get(f"/api/v1/approvals/{request_id}", headers=headers),
        lambda r: r.status_code == 200 and r.json()["status"] == "open" and r.json()["waiting_on_role"],
        30,
        "the reversal's approval never opened",
    )
    return request_id


async def test_a_reversal_is_checked_by_another_posts_the_opposite_once_and_refuses_a_second(http, su, db):
    org = await make_org(http, su, roles=("org_admin", "operator", "member"))
    account = await open_account(http, su, org.id, org.users["member"]["id"], deposit="1000.00")
    original = await deposit_entry(http, su, account, "250.00")
    assert await balance(http, su, account) == Decimal("1250.00")
    maker = org.headers["org_admin"]

    body = {"reason": "Keyed twice by the teller"}
    first = await http.post(f"/api/v1/journal-entries/{original}/reversals", headers=keyed(maker, "rev-1"), json=body)
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "pending_approval"
    again = await http.post(f"/api/v1/journal-entries/{original}/reversals", headers=keyed(maker, "rev-1"), json=body)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    other = await http.post(
        f"/api/v1/journal-entries/{original}/reversals", headers=keyed(org.headers["operator"]), json=body
    )
    assert_error(other, 409, "reversal_pending")

    request_id = await approval_of(http, maker, original)
    decide = f"/api/v1/approvals/{request_id}/decisions"
    assert_error(await http.post(decide, headers=maker, json={"decision": "approve"}), 403, "maker_checker")
    ask = {"decision": "request_info", "reason": "Which slip?"}
    assert_error(await http.post(decide, headers=org.headers["org_admin"], json=ask), 422, "no_information_loop")
    assert_error(
        await http.post(decide, headers=org.headers["operator"], json={"decision": "approve"}), 403, "wrong_role"
    )
    # Another organization's staff do not see the entry, a member may not read entries at all.
    stranger = await make_org(http, su, roles=("org_admin",))
    assert_error(await http.get(f"/api/v1/journal-entries/{original}", headers=stranger.headers["org_admin"]), 404)
    assert_error(await http.get(f"/api/v1/journal-entries/{original}", headers=org.headers["member"]), 403)

    _checker, checker = await make_user(http, su, "org_admin", org.id)
    inbox = (await http.get("/api/v1/approvals/inbox", headers=checker)).json()
    assert [i["subject_type"] for i in inbox if i["request_id"] == request_id] == ["journal_reversal"]
    assert (await http.post(decide, headers=checker, json={"decision": "approve"})).status_code == 200

    done = await poll(
        lambda: entry(http, maker, original),
        lambda e: e["reversed_by_entry_id"] is not None,
        30,
        "the reversal never posted",
    )
    assert done["reversals"][0]["status"] == "posted"
    reversal = await entry(http, maker, done["reversed_by_entry_id"])
    assert reversal["reverses_entry_id"] == original and reversal["entry_type"] == "reversal"
    opposite = {(p["account_id"], -Decimal(p["amount"])) for p in done["postings"]}
    assert {(p["account_id"], Decimal(p["amount"])) for p in reversal["postings"]} == opposite
    assert await balance(http, su, account) == Decimal("1000.00")

    again = await http.post(f"/api/v1/journal-entries/{original}/reversals", headers=keyed(maker), json=body)
    assert_error(again, 409, "already_reversed")
    # The maker's first request sent again once decided: the same answer, and its approval stays decided (a new run
    # of the closed workflow would open a new approval and put the request back in an inbox).
    replay = await http.post(f"/api/v1/journal-entries/{original}/reversals", headers=keyed(maker, "rev-1"), json=body)
    assert replay.status_code == 200 and replay.json()["status"] == "posted"
    await asyncio.sleep(1)  # a restarted workflow would have reopened the request by now
    assert request_id not in [
        i["request_id"] for i in (await http.get("/api/v1/approvals/inbox", headers=checker)).json()
    ]
    async with db.session() as session:
        status = await session.execute(text("SELECT status FROM approval_requests WHERE id = :id"), {"id": request_id})
        assert status.scalar_one() == "approved"
    of_reversal = await http.post(
        f"/api/v1/journal-entries/{reversal['id']}/reversals", headers=keyed(maker), json=body
    )
    assert_error(of_reversal, 422, "is_a_reversal")
    async with db.session() as session:
        posted = await session.execute(
            text("SELECT count(*) FROM journal_entries WHERE idempotency_key = :key"), {"key": f"reversal:{original}"}
        )
        assert posted.scalar_one() == 1
        audited = await session.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'journal_entry.reversed' AND entity_id = :id"),
            {"id": original},
        )
        assert audited.scalar_one() == 1


async def test_a_rejected_reversal_posts_nothing_and_a_new_request_may_follow(http, su):
    org = await make_org(http, su, roles=("org_admin", "operator", "member"))
    account = await open_account(http, su, org.id, org.users["member"]["id"], deposit="500.00")
    original = await deposit_entry(http, su, account, "75.00")
    body = {"reason": "Customer disputes the deposit"}
    maker = org.headers["operator"]
    created = await http.post(f"/api/v1/journal-entries/{original}/reversals", headers=keyed(maker), json=body)
    assert created.status_code == 202, created.text
    request_id = await approval_of(http, maker, original)

    rejection = {"decision": "reject", "reason": "The deposit slip is signed"}
    response = await http.post(
        f"/api/v1/approvals/{request_id}/decisions", headers=org.headers["org_admin"], json=rejection
    )
    assert response.status_code == 200, response.text
    view = await poll(
        lambda: entry(http, maker, original),
        lambda e: e["reversals"][0]["status"] != "pending_approval",
        30,
        "the rejected reversal never closed",
    )
    assert view["reversals"][0]["status"] == "rejected" and view["reversed_by_entry_id"] is None
    assert await balance(http, su, account) == Decimal("575.00")
    retry = await http.post(f"/api/v1/journal-entries/{original}/reversals", headers=keyed(maker), json=body)
    assert retry.status_code == 202, retry.text

    # An entry a payment owns is undone by the payment (a cancel, a return), never by a request.
    other = await open_account(http, su, org.id, org.users["member"]["id"])
    transfer = await http.post(
        "/api/v1/transfers/book",
        headers=keyed(org.headers["org_admin"]),
        json={"from_account_id": account["id"], "to_account_id": other["id"], "amount": "10.00"},
    )
    assert transfer.status_code in (201, 202), transfer.text
    moved = await poll(
        lambda: http.get(f"/api/v1/accounts/{other['id']}/entries", headers=su),
        lambda r: r.json()["items"],
        30,
        "the transfer never posted",
    )
    payment_entry = moved.json()["items"][0]["entry_id"]
    refused = await http.post(f"/api/v1/journal-entries/{payment_entry}/reversals", headers=keyed(maker), json=body)
    assert_error(refused, 422, "owned_by_a_payment")
