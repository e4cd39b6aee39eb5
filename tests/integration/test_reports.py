"""Financial reports on the real stack: they balance on a ledger with a loan (disbursed, repaid with interest), a book
transfer and a cash deposit; an organization sees only its own figures; a closed period refuses a back-dated posting
at the database itself."""

import csv
import io
import uuid
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core import ledger
from domain import periods
from models.ledger import GL_CASH
from tests.conftest import assert_error, make_org, make_user, open_account
from tests.integration.test_loans import FINAL, apply, decide, level, rule, wait_loan, waiting_on
from tests.polling import poll

D = Decimal
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def figures(trial_balance: dict) -> dict[str, tuple[Decimal, Decimal]]:
    return {row["key"]: (D(row["debit"]), D(row["credit"])) for row in trial_balance["rows"]}


async def test_reports_balance_and_an_organization_sees_only_its_own(http, su, sandbox_url, bank, product):
    # Organization A (bank): a loan disbursed into the member's checking, its first installment repaid (interest
    # income), and 100.00 moved to savings by a book transfer.
    loan = await apply(http, sandbox_url, bank, product, member_type=await rule(http, su, [level("loan_officer")]))
    request_id = (await waiting_on(http, su, loan["id"], 1, "loan_officer"))["request_id"]
    assert (await decide(http, bank.headers["loan_officer"], request_id)).status_code == 200
    assert (await wait_loan(http, su, loan["id"], FINAL))["status"] == "active"
    member = bank.headers["member"]
    first = (await http.get(f"/api/v1/loans/{loan['id']}/schedule", headers=member)).json()[0]
    paid = await http.post(
        f"/api/v1/loans/{loan['id']}/repayments",
        headers={**member, "Idempotency-Key": uuid.uuid4().hex},
        json={"amount": first["payment"]},
    )
    assert paid.status_code == 200, paid.text
    interest, principal, payment = D(first["interest"]), D(first["principal"]), D(first["payment"])
    assert interest > 0
    savings = await open_account(http, su, bank.id, bank.users["member"]["id"], type_="savings")
    moved = await http.post(
        "/api/v1/transfers/book",
        headers={**member, "Idempotency-Key": uuid.uuid4().hex},
        json={
            "from_account_id": bank.account["id"],
            "to_account_id": savings["id"],
            "amount": "100.00",
            "memo": "Save",
        },
    )
    assert moved.status_code == 201 and moved.json()["status"] == "completed", moved.text
    # Organization B: one cash deposit.
    other = await make_org(http, su)
    await open_account(http, su, other.id, other.users["member"]["id"], deposit="750.00")

    admin = bank.headers["org_admin"]
    trial = (await http.get("/api/v1/reports/trial-balance", headers=admin)).json()
    assert trial["scope"]["org_id"] == bank.id and trial["balanced"]
    assert figures(trial) == {
        "MEMBER-LOAN": (D("5000.00") - principal, D(0)),
        "MEMBER-CHECKING": (D(0), D("5000.00") - payment - D("100.00")),
        "MEMBER-SAVINGS": (D(0), D("100.00")),
        "GL-INTEREST-INCOME": (D(0), interest),
    }
    sheet = (await http.get("/api/v1/reports/balance-sheet", headers=admin)).json()
    assert sheet["balanced"] and D(sheet["total_assets"]) == D("5000.00") - principal
    assert {r["key"]: D(r["amount"]) for r in sheet["equity"]}["CURRENT-EARNINGS"] == interest
    income = (await http.get("/api/v1/reports/income-statement", headers=admin)).json()
    assert D(income["net_income"]) == interest
    flows = (await http.get("/api/v1/reports/cash-flow", headers=admin)).json()
    assert flows["reconciles"] and D(flows["net_change"]) == 0  # no cash moved: book entries only
    assert {r["key"]: D(r["amount"]) for r in flows["investing"]} == {"MEMBER-LOAN": principal - D("5000.00")}

    # B's admin sees B's deposit and nothing of A; A's admin cannot name B.
    theirs = (await http.get("/api/v1/reports/trial-balance", headers=other.headers["org_admin"])).json()
    assert figures(theirs) == {"GL-CASH": (D("750.00"), D(0)), "MEMBER-CHECKING": (D(0), D("750.00"))}
    assert_error(await http.get("/api/v1/reports/trial-balance", params={"org_id": other.id}, headers=admin), 404)

    # Bank-wide, over every organization's activity of the session: it balances too.
    everything = (await http.get("/api/v1/reports/trial-balance", headers=su)).json()
    assert everything["scope"]["org_id"] is None and everything["balanced"]
    assert (await http.get("/api/v1/reports/balance-sheet", headers=su)).json()["balanced"]
    assert (await http.get("/api/v1/reports/cash-flow", headers=su)).json()["reconciles"]

    # The files: by the format parameter or the Accept header, with their type and a filename.
    as_csv = await http.get("/api/v1/reports/trial-balance", params={"format": "csv"}, headers=admin)
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert f'filename="trial-balance-org-{bank.id}-' in as_csv.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[-1] == ["Total", trial["total_debit"], trial["total_credit"], "total"]
    as_pdf = await http.get("/api/v1/reports/balance-sheet", headers={**admin, "Accept": "application/pdf"})
    assert as_pdf.headers["content-type"] == "application/pdf" and as_pdf.content.startswith(b"%PDF")
    as_xlsx = await http.get("/api/v1/reports/cash-flow", params={"format": "xlsx"}, headers=admin)
    assert as_xlsx.headers["content-type"] == XLSX and as_xlsx.content.startswith(b"PK")

    # Bad dates: a structured 422.
    backwards = {"from": "2026-02-01", "to": "2026-01-01"}
    error = assert_error(await http.get("/api/v1/reports/income-statement", params=backwards, headers=admin), 422)
    assert error["code"] == "invalid_date_range"
    no_date = await http.get("/api/v1/reports/balance-sheet", params={"as_of": "2026-13-01"}, headers=admin)
    assert assert_error(no_date, 422)["code"] == "validation_error"


async def test_a_closed_period_refuses_a_back_dated_posting_at_the_database(http, su, db):
    org = await make_org(http, su)
    account = await open_account(http, su, org.id, org.users["member"]["id"], deposit="100.00")
    admin, march = org.headers["org_admin"], {"period_start": "2002-03-01", "period_end": "2002-03-31"}
    # An organization's close is maker-checker (tests/integration/test_maker_checker.py): another admin approves it.
    asked = await http.post("/api/v1/reports/periods", headers=admin, json={**march, "reason": "Q1 2002 closed"})
    assert asked.status_code == 202, asked.text
    _, checker = await make_user(http, su, "org_admin", org.id)
    request = await poll(
        lambda: http.get(f"/api/v1/maker-checker/{asked.json()['id']}", headers=admin),
        lambda r: r.json()["approval_request_id"],
        30,
        "the close's approval request never appeared",
    )
    approval = f"/api/v1/approvals/{request.json()['approval_request_id']}"
    await poll(
        lambda: http.get(approval, headers=checker),
        lambda r: r.status_code == 200 and r.json()["waiting_on_role"] == "org_admin",
        30,
        "the close's approval never opened",
    )
    approved = await http.post(f"{approval}/decisions", headers=checker, json={"decision": "approve"})
    assert approved.status_code == 200, approved.text
    closed = await poll(
        lambda: http.get(f"/api/v1/maker-checker/{asked.json()['id']}", headers=admin),
        lambda r: r.json()["closed_period_id"],
        30,
        "the approved close never applied",
    )
    listed = (await http.get("/api/v1/reports/periods", headers=admin)).json()["items"]
    period = next(p for p in listed if p["id"] == closed.json()["closed_period_id"])
    assert period["org_id"] == org.id
    again = await http.post("/api/v1/reports/periods", headers=admin, json={**march, "reason": "again"})
    assert again.status_code == 200 and again.json()["id"] == period["id"]
    assert_error(
        await http.post("/api/v1/reports/periods", headers=org.headers["operator"], json={**march, "reason": "x"}), 403
    )
    elsewhere = {**march, "reason": "x", "org_id": str(uuid.uuid4())}
    assert_error(await http.post("/api/v1/reports/periods", headers=admin, json=elsewhere), 404)
    not_over = {"period_start": "2002-04-01", "period_end": "2199-12-31", "reason": "x"}
    assert assert_error(await http.post("/api/v1/reports/periods", headers=admin, json=not_over), 422)["code"] == (
        "period_not_ended"
    )
    listed = (await http.get("/api/v1/reports/periods", headers=admin)).json()["items"]
    assert period["id"] in [p["id"] for p in listed]

    async def post_dated(session, day: str) -> None:
        """A journal entry and its two postings written by plain SQL, as any client of the database could."""
        entry = uuid.uuid4()
        await session.execute(
            text("""INSERT INTO journal_entries (id, idempotency_key, entry_type, description, effective_date)
                    VALUES (:id, :key, 'manual', 'Back-dated', :day)"""),
            {"id": entry, "key": f"test-closed-{entry}", "day": date.fromisoformat(day)},
        )
        await session.execute(
            text("""INSERT INTO postings (entry_id, account_id, amount)
                    SELECT :entry, id, 5.00 FROM ledger_accounts WHERE code = :cash AND currency = 'USD'
                    UNION ALL SELECT :entry, CAST(:account AS uuid), -5.00"""),
            {"entry": entry, "cash": GL_CASH, "account": account["id"]},
        )

    async def close_bank_wide_then_post(session) -> None:
        async with session.begin():
            await session.execute(
                text("""INSERT INTO closed_periods (id, period_start, period_end, reason, closed_by)
                        SELECT :id, DATE '2002-05-01', DATE '2002-05-31', 'test', id FROM users LIMIT 1"""),
                {"id": uuid.uuid4()},
            )
            await post_dated(session, "2002-05-10")

    async with db.session() as session:
        with pytest.raises(DBAPIError) as refused:
            async with session.begin():
                await post_dated(session, "2002-03-15")
        assert isinstance(ledger.ledger_error(refused.value), ledger.PostingInClosedPeriod)
        assert "closed period 2002-03-01 to 2002-03-31" in str(refused.value)
        # The correction goes in the open period: the same entry dated 1 April posts (rolled back, to leave nothing).
        async with session.begin() as open_period:
            await post_dated(session, "2002-04-01")
            await open_period.rollback()
        # A bank-wide closure applies to every organization's accounts (rolled back with the entry: nothing stays).
        with pytest.raises(DBAPIError) as bank_wide:
            await close_bank_wide_then_post(session)
        assert isinstance(ledger.ledger_error(bank_wide.value), ledger.PostingInClosedPeriod)
        # A month with interest accrued and not posted yet cannot close: its month-end posting is dated inside it.
        async with session.begin() as pending:
            await session.execute(
                text("INSERT INTO accrual_runs (day, accounts, accrued) VALUES ('2002-06-10', 1, 0.5)")
            )
            assert await periods.unposted_interest_months(session, date(2002, 6, 1), date(2002, 6, 30)) == ["2002-06"]
            assert await periods.unposted_interest_months(session, date(2002, 6, 1), date(2002, 6, 29)) == []
            await session.execute(
                text("INSERT INTO interest_posting_runs (period, accounts, total) VALUES ('2002-06', 1, 0.5)")
            )
            assert await periods.unposted_interest_months(session, date(2002, 5, 1), date(2002, 7, 31)) == []
            await pending.rollback()
        audited = await session.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'accounting_period.closed' AND entity_id = :id"),
            {"id": period["id"]},
        )
        assert audited.scalar_one() == 1
