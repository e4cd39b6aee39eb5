import asyncio
import uuid
from decimal import Decimal

from sqlalchemy import text

from tests.conftest import assert_error, make_org, open_account


async def funded_pair(http, su, amount="500.00"):
    org = await make_org(http, su)
    owner = org.users["member"]["id"]
    src = await open_account(http, su, org.id, owner, deposit=amount)
    dst = await open_account(http, su, org.id, owner, type_="savings")
    return org, src, dst


def transfer_body(src, dst, amount="125.00", memo="Rent share"):
    return {"from_account_id": src["id"], "to_account_id": dst["id"], "amount": amount, "memo": memo}


async def balance(http, headers, account_id) -> dict:
    return (await http.get(f"/api/v1/accounts/{account_id}", headers=headers)).json()


async def test_book_transfer_posts_one_balanced_entry(http, su, db, temporal_env):
    org, src, dst = await funded_pair(http, su)
    member = {**org.headers["member"], "Idempotency-Key": f"t-{uuid.uuid4()}"}
    response = await http.post("/api/v1/transfers/book", headers=member, json=transfer_body(src, dst))
    assert response.status_code == 201, response.text
    transfer = response.json()
    assert transfer["status"] == "completed" and transfer["workflow_status"] == "completed"
    assert [e["status"] for e in transfer["events"]] == ["created", "validated", "completed"]
    assert Decimal(transfer["amount"]) == Decimal("125.00")
    assert (await balance(http, su, src["id"]))["ledger_balance"] == "375.00"
    assert (await balance(http, su, dst["id"]))["available_balance"] == "125.00"

    async with db.session() as session:
        legs = (
            await session.execute(
                text("SELECT account_id, amount FROM postings WHERE entry_id = :e"),
                {"e": uuid.UUID(transfer["journal_entry_id"])},
            )
        ).all()
    assert sorted((str(a), amt) for a, amt in legs) == sorted(
        [(src["id"], Decimal("125.00")), (dst["id"], Decimal("-125.00"))]
    )

    fetched = await http.get(f"/api/v1/transfers/{transfer['id']}", headers=org.headers["member"])
    assert fetched.status_code == 200 and fetched.json()["workflow_status"] == "completed"

    # Operators find it in the Temporal UI by its search attributes (visibility is eventually consistent).
    query = f"WorkflowId = '{transfer['workflow_id']}' AND PaymentKind = 'book' AND PaymentStatus = 'completed'"
    for _ in range(50):
        found = [w async for w in temporal_env.client.list_workflows(query)]
        if found:
            break
        await asyncio.sleep(0.2)
    assert len(found) == 1


async def test_same_key_twice_is_one_transfer_and_another_body_is_409(http, su, db):
    org, src, dst = await funded_pair(http, su)
    headers = {**org.headers["member"], "Idempotency-Key": f"t-{uuid.uuid4()}"}
    first, second = await asyncio.gather(
        http.post("/api/v1/transfers/book", headers=headers, json=transfer_body(src, dst)),
        http.post("/api/v1/transfers/book", headers=headers, json=transfer_body(src, dst)),
    )
    assert {first.status_code, second.status_code} <= {200, 201, 202}  # 202: created, still running
    assert [first.status_code, second.status_code].count(201) <= 1  # only the request that inserted says created
    assert first.json()["id"] == second.json()["id"]
    again = await http.post("/api/v1/transfers/book", headers=headers, json=transfer_body(src, dst))
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert (await balance(http, su, src["id"]))["ledger_balance"] == "375.00"
    async with db.session() as session:
        entries = (
            await session.execute(
                text("SELECT count(*) FROM journal_entries WHERE payment_id = :p"), {"p": uuid.UUID(first.json()["id"])}
            )
        ).scalar_one()
    assert entries == 1
    error = assert_error(
        await http.post("/api/v1/transfers/book", headers=headers, json=transfer_body(src, dst, amount="125.01")),
        409,
        "idempotency_key_reused",
    )
    assert error["details"]["payment_id"] == first.json()["id"]


async def test_insufficient_funds_is_422_and_writes_nothing(http, su, db, temporal_env):
    org, src, dst = await funded_pair(http, su, amount="100.00")
    key = f"t-{uuid.uuid4()}"
    response = await http.post(
        "/api/v1/transfers/book",
        headers={**org.headers["member"], "Idempotency-Key": key},
        json=transfer_body(src, dst, amount="100.01"),
    )
    error = assert_error(response, 422, "insufficient_funds")
    assert error["details"]["available_balance"] == "100.00"
    async with db.session() as session:
        payments = (
            await session.execute(text("SELECT count(*) FROM payments WHERE idempotency_key = :k"), {"k": key})
        ).scalar_one()
        audits = (
            await session.execute(
                text("SELECT count(*) FROM audit_log WHERE entity_id = :a AND action LIKE 'payment%'"), {"a": src["id"]}
            )
        ).scalar_one()
    assert payments == 0 and audits == 0
    assert (await balance(http, su, src["id"]))["ledger_balance"] == "100.00"


async def test_holds_reduce_what_can_be_moved(http, su):
    org, src, dst = await funded_pair(http, su, amount="100.00")
    hold = await http.post(
        f"/api/v1/accounts/{src['id']}/holds",
        headers={**su, "Idempotency-Key": "h1"},
        json={"amount": "60.00", "reason": "card authorization"},
    )
    assert hold.status_code == 201
    account = await balance(http, su, src["id"])
    assert (account["ledger_balance"], account["held"], account["available_balance"]) == ("100.00", "60.00", "40.00")
    assert_error(
        await http.post(
            "/api/v1/transfers/book",
            headers={**org.headers["member"], "Idempotency-Key": "x1"},
            json=transfer_body(src, dst, amount="50.00"),
        ),
        422,
        "insufficient_funds",
    )
    released = await http.post(f"/api/v1/accounts/{src['id']}/holds/{hold.json()['id']}/release", headers=su)
    assert released.json()["status"] == "released"
    ok = await http.post(
        "/api/v1/transfers/book",
        headers={**org.headers["member"], "Idempotency-Key": "x2"},
        json=transfer_body(src, dst, amount="50.00"),
    )
    assert ok.status_code == 201 and ok.json()["status"] == "completed"


async def test_bad_transfers_are_refused_with_clear_errors(http, su):
    org, src, dst = await funded_pair(http, su)
    member = {**org.headers["member"], "Idempotency-Key": f"t-{uuid.uuid4()}"}
    assert_error(
        await http.post("/api/v1/transfers/book", headers=member, json=transfer_body(src, src)), 422, "same_account"
    )
    for amount in ("0", "-5", "1.001", "abc"):
        assert_error(
            await http.post("/api/v1/transfers/book", headers=member, json=transfer_body(src, dst, amount=amount)),
            422,
            "validation_error",
        )
    assert_error(
        await http.post("/api/v1/transfers/book", headers=org.headers["member"], json=transfer_body(src, dst)),
        422,
        "validation_error",
    )  # no Idempotency-Key
    other = await make_org(http, su)
    stranger = {**other.headers["member"], "Idempotency-Key": "k"}
    assert_error(await http.post("/api/v1/transfers/book", headers=stranger, json=transfer_body(src, dst)), 404)
    operator = {**org.headers["operator"], "Idempotency-Key": "k"}
    assert_error(await http.post("/api/v1/transfers/book", headers=operator, json=transfer_body(src, dst)), 403)


async def test_transfers_list_is_scoped_and_filtered(http, su):
    org, src, dst = await funded_pair(http, su)
    for i, amount in enumerate(("10.00", "20.00", "30.00")):
        response = await http.post(
            "/api/v1/transfers/book",
            json=transfer_body(src, dst, amount=amount),
            headers={**org.headers["member"], "Idempotency-Key": f"list-{i}"},
        )
        assert response.status_code == 201
    page = (
        await http.get("/api/v1/transfers", headers=org.headers["org_admin"], params={"min_amount": "15", "limit": 1})
    ).json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["items"][0]["amount"] == "30.00"
    other = await make_org(http, su)
    assert (await http.get("/api/v1/transfers", headers=other.headers["org_admin"])).json()["total"] == 0
    assert_error(await http.get(f"/api/v1/transfers/{page['items'][0]['id']}", headers=other.headers["member"]), 404)
