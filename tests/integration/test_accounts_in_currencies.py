"""Accounts in any currency (migration 0047): an account holds the ISO 4217 currency it opened in; its cash moves
through the bank's GL accounts of that currency; what would mix two currencies in one entry, or move another currency
than dollars through ACH, a loan or a savings product, is a clear 422 before anything is written."""

import uuid
from decimal import Decimal

from sqlalchemy import text

from tests.conftest import assert_error, make_org, open_account
from tests.integration.test_ach import link_external


async def deposit(http, su, account_id: str, amount: str):
    return await http.post(
        f"/api/v1/accounts/{account_id}/deposits",
        headers={**su, "Idempotency-Key": uuid.uuid4().hex},
        json={"amount": amount},
    )


async def test_a_euro_account_takes_cash_through_the_banks_euro_cash_account(http, su, db):
    org = await make_org(http, su)
    member = org.users["member"]["id"]
    euros = await open_account(http, su, org.id, member, currency="eur", deposit="250.50")
    assert euros["currency"] == "EUR" and euros["ledger_balance"] == "250.50"

    async with db.session() as session:
        legs = (
            await session.execute(
                text(
                    """SELECT a.kind, a.code, a.currency, p.amount FROM postings p
                       JOIN ledger_accounts a ON a.id = p.account_id
                       WHERE p.entry_id = (SELECT entry_id FROM postings WHERE account_id = :id)
                       ORDER BY p.amount DESC"""
                ),
                {"id": uuid.UUID(euros["id"])},
            )
        ).all()
        gl_per_currency = (
            await session.execute(
                text("SELECT count(*) FROM ledger_accounts WHERE kind = 'gl' AND code = 'GL-CASH' AND currency = 'EUR'")
            )
        ).scalar_one()
    assert [tuple(leg) for leg in legs] == [
        ("gl", "GL-CASH", "EUR", Decimal("250.50")),
        ("internal", None, "EUR", Decimal("-250.50")),
    ]
    assert gl_per_currency == 1  # a second euro account finds it
    await open_account(http, su, org.id, member, currency="EUR", deposit="1.00")

    # Cash out comes from the same euro cash account; the member's transactions show the currency.
    out = await http.post(
        f"/api/v1/accounts/{euros['id']}/withdrawals",
        headers={**su, "Idempotency-Key": uuid.uuid4().hex},
        json={"amount": "50.50"},
    )
    assert out.status_code == 201, out.text
    assert out.json()["ledger_balance"] == "200.00"
    seen = (await http.get(f"/api/v1/transactions?account_id={euros['id']}", headers=org.headers["member"])).json()[
        "items"
    ]
    assert {(row["currency"], row["amount"]) for row in seen} == {("EUR", "250.50"), ("EUR", "-50.50")}


async def test_amounts_keep_the_currencys_minor_units_and_currencies_finer_than_cents_are_refused(http, su):
    org = await make_org(http, su)
    yen = await open_account(http, su, org.id, org.users["member"]["id"], currency="JPY")
    error = assert_error(await deposit(http, su, yen["id"], "1500.50"), 422, "amount_precision")
    assert error["details"]["decimal_places"] == 0
    done = await deposit(http, su, yen["id"], "1500")
    assert done.status_code == 201 and Decimal(done.json()["ledger_balance"]) == 1500

    body = {"name": "Dinars", "type": "checking", "org_id": org.id}
    assert_error(await http.post("/api/v1/accounts", headers=su, json={**body, "currency": "KWD"}), 422)
    assert_error(await http.post("/api/v1/accounts", headers=su, json={**body, "currency": "XAU"}), 422)
    assert_error(await http.post("/api/v1/accounts", headers=su, json={**body, "currency": "ZZZ"}), 422)
    loan = {**body, "type": "loan", "currency": "EUR"}
    assert_error(await http.post("/api/v1/accounts", headers=su, json=loan), 422, "currency_not_supported")


async def test_what_would_mix_currencies_or_move_euros_by_ach_is_refused_and_writes_nothing(
    http, su, db, sandbox_url, odfi
):
    org = await make_org(http, su)
    member = org.users["member"]["id"]
    euros = await open_account(http, su, org.id, member, currency="EUR", deposit="100.00")
    more_euros = await open_account(http, su, org.id, member, currency="EUR")
    dollars = await open_account(http, su, org.id, member, deposit="100.00")
    headers = {**org.headers["member"], "Idempotency-Key": uuid.uuid4().hex}

    def transfer(src, dst, amount="10.00"):
        body = {"from_account_id": src["id"], "to_account_id": dst["id"], "amount": amount, "memo": "move"}
        return http.post("/api/v1/transfers/book", headers={**headers, "Idempotency-Key": uuid.uuid4().hex}, json=body)

    error = assert_error(await transfer(euros, dollars), 422, "currency_mismatch")
    assert error["details"] == {"from_currency": "EUR", "to_currency": "USD"}
    standing = {
        "from_account_id": euros["id"],
        "to_account_id": dollars["id"],
        "amount": "10.00",
        "frequency": "monthly",
    }
    refused = await http.post(
        "/api/v1/standing-instructions", headers={**headers, "Idempotency-Key": uuid.uuid4().hex}, json=standing
    )
    assert_error(refused, 422, "currency_mismatch")
    moved = await transfer(euros, more_euros, "40.00")
    assert moved.status_code == 201, moved.text
    assert moved.json()["currency"] == "EUR" and moved.json()["status"] == "completed"

    external = await link_external(http, sandbox_url, org)
    for kind in ("ach_debit", "ach_credit"):
        refused = await http.post(
            "/api/v1/payments",
            headers={**org.headers["org_admin"], "Idempotency-Key": uuid.uuid4().hex},
            json={"kind": kind, "amount": "5.00", "account_id": euros["id"], "external_account_id": external["id"]},
        )
        assert_error(refused, 422, "currency_not_supported")

    manual = {
        "description": "one leg each side",
        "effective_date": "2020-01-02",  # refused for its currencies before its date is looked at
        "legs": [{"account_id": euros["id"], "amount": "5.00"}, {"account_id": dollars["id"], "amount": "-5.00"}],
    }
    staff = {**org.headers["operator"], "Idempotency-Key": uuid.uuid4().hex}
    error = assert_error(await http.post("/api/v1/journal-entries", headers=staff, json=manual), 422)
    assert error["code"] == "currency_mismatch", error

    product = await http.post(
        "/api/v1/savings-products", headers=su, json={"name": f"Saver {uuid.uuid4().hex[:6]}", "annual_rate": "0.02"}
    )
    assert product.status_code == 201, product.text
    attach = await http.put(
        f"/api/v1/accounts/{euros['id']}/savings-product", headers=su, json={"product_id": product.json()["id"]}
    )
    assert_error(attach, 422, "currency_not_supported")

    async with db.session() as session:
        written = (
            await session.execute(
                text("SELECT count(*) FROM payments WHERE from_account_id = :a OR to_account_id = :a"),
                {"a": uuid.UUID(euros["id"])},
            )
        ).scalar_one()
    assert written == 1  # the euro-to-euro transfer alone


async def test_the_ledger_reports_read_one_currency_at_a_time(http, su):
    org = await make_org(http, su)
    member = org.users["member"]["id"]
    await open_account(http, su, org.id, member, currency="GBP", deposit="70.00")
    await open_account(http, su, org.id, member, deposit="30.00")

    def trial_balance(currency: str | None):
        query = f"?org_id={org.id}" + (f"&currency={currency}" if currency else "")
        return http.get(f"/api/v1/reports/trial-balance{query}", headers=su)

    pounds = (await trial_balance("gbp")).json()
    assert pounds["scope"]["currency"] == "GBP" and pounds["balanced"]
    assert {(row["key"], row["debit"], row["credit"]) for row in pounds["rows"]} == {
        ("GL-CASH", "70.00", "0.00"),
        ("MEMBER-CHECKING", "0.00", "70.00"),
    }
    dollars = (await trial_balance(None)).json()
    assert dollars["scope"]["currency"] == "USD" and dollars["total_debit"] == "30.00"
    summary = await http.get(f"/api/v1/reports/ledger-summary?org_id={org.id}&currency=GBP&group_by=line", headers=su)
    assert summary.status_code == 200, summary.text
    assert {row["group"]["line"]: row["net"] for row in summary.json()["rows"]} == {
        "GL-CASH": "70.00",
        "MEMBER-CHECKING": "-70.00",
    }
    assert_error(await trial_balance("ZZZ"), 422)
