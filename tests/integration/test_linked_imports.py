"""A linked account's transactions synced from the account-linking provider's feed (sandbox /transactions/sync, as
Plaid's): paged by cursor, each provider transaction one line however often the account syncs, the provider's
categories kept unless a rule says otherwise, money out negative; a hand-entered account and a stranger refused."""

import uuid
from decimal import Decimal

from sqlalchemy import text

from tests.conftest import assert_error, make_org
from tests.integration.test_ach import link_external
from tests.integration.test_transaction_imports import finished, member_external_account

V1 = "/api/v1/transaction-imports"


async def sync(http, headers, account_id: str, key: str | None = None):
    return await http.post(
        f"{V1}/sync",
        headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex},
        json={"external_account_id": account_id},
    )


async def lines_of(db, account_id: str) -> list[tuple]:
    async with db.session() as session:
        rows = await session.execute(
            text(
                "SELECT merchant, description, amount, category_key, category_source FROM member_transactions "
                "WHERE external_account_id = :a ORDER BY posted_on, txn_id"
            ),
            {"a": account_id},
        )
        return [tuple(r) for r in rows]


async def test_a_linked_account_syncs_page_by_page_once_and_again_adds_nothing(http, su, sandbox_url, db):
    org = await make_org(http, su)
    member, headers = org.users["member"], org.headers["member"]
    linked = await link_external(http, sandbox_url, org, owner_id=member["id"])
    rule = await http.post(
        "/api/v1/category-rules",
        headers=headers,
        json={"field": "merchant", "match": "keyword", "pattern": "fresh market", "category_key": "groceries"},
    )
    assert rule.status_code == 201, rule.text

    key = uuid.uuid4().hex
    started = await sync(http, headers, linked["id"], key)
    assert started.status_code == 202, started.text
    assert started.json()["source"] == "linked" and started.json()["workflow_id"] == f"import-{started.json()['id']}"
    again = await sync(http, headers, linked["id"], key)  # the same key: the same sync
    assert again.status_code == 200 and again.json()["id"] == started.json()["id"]
    done = await finished(http, headers, started.json()["id"])
    # The sandbox item has two accounts of 40 transactions each, read 25 a page: this account's 40 are loaded.
    assert (done["status"], done["rows_read"], done["rows_loaded"], done["rows_duplicate"]) == ("completed", 40, 40, 0)

    lines = await lines_of(db, linked["id"])
    assert len(lines) == 40
    payroll = [line for line in lines if line[1] == "ACME PAYROLL"]
    spending = [line for line in lines if line[1] != "ACME PAYROLL"]
    assert len(payroll) == 4 and all(line[2] > 0 and line[3] == "income" for line in payroll)
    assert spending and all(line[2] < 0 for line in spending)
    by_merchant = {line[0]: (line[3], line[4]) for line in spending}
    if "Fresh Market" in by_merchant:
        assert by_merchant["Fresh Market"] == ("groceries", "rule")  # the member's rule over the provider's
    if "City Transit" in by_merchant:
        assert by_merchant["City Transit"] == ("transport", "provider")
    assert all(amount == amount.quantize(Decimal("0.01")) for _, _, amount, _, _ in lines)

    # The next sync starts where this one ended: nothing new, nothing written twice.
    later = await sync(http, headers, linked["id"])
    assert later.status_code == 202, later.text
    done = await finished(http, headers, later.json()["id"])
    assert (done["status"], done["rows_read"], done["rows_loaded"]) == ("completed", 0, 0)
    assert len(await lines_of(db, linked["id"])) == 40


async def test_a_hand_entered_account_and_a_stranger_are_refused(http, su):
    org = await make_org(http, su)
    manual = await member_external_account(http, org)
    assert_error(await sync(http, org.headers["member"], manual["id"]), 422, "not_a_linked_account")
    stranger = await make_org(http, su)
    assert_error(await sync(http, stranger.headers["member"], manual["id"]), 404)
    bad = await http.post(
        f"{V1}/sync", headers={**org.headers["member"], "Idempotency-Key": uuid.uuid4().hex}, json={"cursor": "x"}
    )
    assert_error(bad, 422)
