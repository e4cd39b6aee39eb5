"""Monthly statements end to end: ledger entries written in the real Postgres, "MonthlyStatementsWorkflow" on the
real Temporal server, the list and the PDF through the real API, the PDF's text read back with pypdf."""

import asyncio
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader
from sqlalchemy import text
from temporalio.client import WorkflowFailureError

from core import ledger
from models.ledger import GL_CASH, GL_INTEREST_EXPENSE
from models.statements import StatementRunInput, StatementRunResult
from tests.conftest import assert_error, bank_operations, make_org, make_user, open_account
from workflows.monthly_statements import MonthlyStatementsWorkflow


def gl_id(code: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"backoffice:gl:{code}")


async def post(
    db, account_id: str, day: date, amount: str, description: str, entry_type: str = "cash_deposit", gl: str = GL_CASH
) -> None:
    """Money into (amount > 0) or out of a deposit account: the account is credited (negative posting)."""
    async with db.session() as session, session.begin():
        await ledger.post_entry(
            session,
            idempotency_key=f"test:{uuid.uuid4()}",
            entry_type=entry_type,
            description=description,
            effective_date=day,
            legs=[ledger.Leg(gl_id(gl), D(amount)), ledger.Leg(uuid.UUID(account_id), -D(amount))],
        )


async def opened_on(db, account_id: str, when: datetime) -> None:
    async with db.session() as session, session.begin():
        await session.execute(
            text("UPDATE ledger_accounts SET created_at = :at WHERE id = :id"), {"at": when, "id": account_id}
        )


def pdf_text(pdf: bytes) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages)


async def test_statement_pdf_shows_balances_entries_and_interest(http, su, db, temporal_env, settings):
    org = await make_org(http, su)
    member = org.users["member"]
    account = await open_account(http, su, org.id, owner_id=member["id"], type_="savings")
    empty = await open_account(http, su, org.id, owner_id=member["id"])
    late = await open_account(http, su, org.id, owner_id=member["id"])
    later = await open_account(http, su, org.id, owner_id=member["id"])
    for acct in (account, empty):
        await opened_on(db, acct["id"], datetime(2025, 8, 20, 15, tzinfo=UTC))
    # Periods are months in the schedules' time zone (New York, still on EDT on Nov 1, 2025).
    await opened_on(db, late["id"], datetime(2025, 11, 1, 3, 30, tzinfo=UTC))  # Oct 31, 23:30 there
    await opened_on(db, later["id"], datetime(2025, 11, 1, 4, 30, tzinfo=UTC))  # Nov 1, 00:30 there
    await post(db, account["id"], date(2025, 9, 15), "1000.00", "Opening deposit")
    await post(db, account["id"], date(2025, 10, 3), "250.50", "Payroll ACME")
    await post(db, account["id"], date(2025, 10, 10), "-100.25", "Card payment <Grocer & Sons>")
    await post(
        db,
        account["id"],
        date(2025, 10, 31),
        "3.17",
        "Interest for 2025-10",
        entry_type="interest_posting",
        gl=GL_INTEREST_EXPENSE,
    )
    await post(db, account["id"], date(2025, 11, 2), "50.00", "November deposit")

    # Started through the API by bank operations (a run writes every organization's statements); neither a member
    # nor one organization's operator may.
    body = {"period": "2025-10"}
    for role in ("member", "operator"):
        assert_error(await http.post("/api/v1/statements/runs", json=body, headers=org.headers[role]), 403, "forbidden")
    response = await http.post("/api/v1/statements/runs", json=body, headers=await bank_operations(http, su))
    assert response.status_code == 202, response.text
    assert response.json()["workflow_id"] == "statements-2025-10"
    result = await temporal_env.client.get_workflow_handle(
        "statements-2025-10", result_type=StatementRunResult
    ).result()
    assert result.period == "2025-10" and result.statements_written >= 3

    page = (await http.get(f"/api/v1/accounts/{account['id']}/statements", headers=org.headers["member"])).json()
    assert page["total"] == 1
    row = page["items"][0]
    assert (row["period"], row["period_start"], row["period_end"]) == ("2025-10", "2025-10-01", "2025-10-31")
    assert (D(row["opening_balance"]), D(row["closing_balance"]), D(row["interest"]), row["entry_count"]) == (
        D("1000.00"),
        D("1153.42"),
        D("3.17"),
        3,
    )

    response = await http.get(row["pdf_url"], headers=org.headers["member"])
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    first_pdf = response.content
    text_ = pdf_text(first_pdf)
    assert "Account Statement" in text_
    assert f"Account number ****{uuid.UUID(account['id']).hex[-4:]}" in text_
    assert "Owner Test member" in text_
    assert "Statement period Oct 1, 2025 to Oct 31, 2025" in text_
    assert "Opening balance $1,000.00" in text_
    assert "Oct 3, 2025 Payroll ACME $250.50 $1,250.50" in text_
    assert "Oct 10, 2025 Card payment <Grocer & Sons> -$100.25 $1,150.25" in text_
    assert "Oct 31, 2025 Interest for 2025-10 $3.17 $1,153.42" in text_
    assert "Interest paid $3.17" in text_
    assert "Closing balance $1,153.42" in text_
    assert "November deposit" not in text_ and "Opening deposit" not in text_

    # The account without activity gets a statement of zeros; the one opened on Oct 31 (New York) has one too,
    # the one opened on Nov 1 none.
    empty_rows = (await http.get(f"/api/v1/accounts/{empty['id']}/statements", headers=su)).json()["items"]
    assert [(r["opening_balance"], r["closing_balance"], r["entry_count"]) for r in empty_rows] == [("0.00", "0.00", 0)]
    assert "No activity this period." in pdf_text((await http.get(empty_rows[0]["pdf_url"], headers=su)).content)
    assert (await http.get(f"/api/v1/accounts/{late['id']}/statements", headers=su)).json()["total"] == 1
    assert (await http.get(f"/api/v1/accounts/{later['id']}/statements", headers=su)).json()["total"] == 0

    # The owner is told once in the app.
    notes = (await http.get("/api/v1/notifications", headers=org.headers["member"])).json()["items"]
    assert sorted(n["entity_id"] for n in notes if n["kind"] == "statement_ready") == sorted(
        [account["id"], empty["id"], late["id"]]
    )

    # Run again: nothing more is written, nobody is told twice, the PDF is the same document.
    response = await http.post("/api/v1/statements/runs", json=body, headers=su)
    assert response.status_code == 202, response.text
    again = await temporal_env.client.get_workflow_handle("statements-2025-10", result_type=StatementRunResult).result()
    assert again.statements_written == 0 and again.accounts == result.accounts
    notes = (await http.get("/api/v1/notifications", headers=org.headers["member"])).json()["items"]
    assert len([n for n in notes if n["kind"] == "statement_ready"]) == 3
    assert (await http.get(row["pdf_url"], headers=org.headers["member"])).content == first_pdf

    # A back-dated correction written after the statement does not change the statement already issued.
    await post(db, account["id"], date(2025, 10, 20), "9.99", "Back-dated correction")
    assert (await http.get(row["pdf_url"], headers=org.headers["member"])).content == first_pdf


async def test_batches_walk_every_account_across_continue_as_new(http, su, db, temporal_env, settings):
    org = await make_org(http, su, roles=("member",))
    accounts = [await open_account(http, su, org.id, owner_id=org.users["member"]["id"]) for _ in range(5)]
    for i, acct in enumerate(accounts):
        await opened_on(db, acct["id"], datetime(2024, 12, 1, tzinfo=UTC))
        await post(db, acct["id"], date(2025, 1, 10 + i), f"{i + 1}0.00", f"Deposit {i}")
    workflow_id = f"test-statements-{uuid.uuid4().hex[:8]}"
    result = await temporal_env.client.execute_workflow(
        MonthlyStatementsWorkflow.run,
        StatementRunInput(period="2025-01", batch_size=2, batches_per_run=1, notify_owners=False),
        id=workflow_id,
        task_queue=settings.task_queue,
    )
    # Only these five accounts existed in January 2025; three batches of two, in runs of one batch each.
    assert result == StatementRunResult(period="2025-01", accounts=5, statements_written=5)
    for _ in range(50):  # visibility is eventually consistent
        runs = [e async for e in temporal_env.client.list_workflows(f"WorkflowId = '{workflow_id}'")]
        if len(runs) == 3:
            break
        await asyncio.sleep(0.1)
    assert len(runs) == 3
    async with db.session() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT account_id, closing_balance, entry_count FROM statements WHERE period = '2025-01' ORDER BY 2"
                )
            )
        ).all()
    assert [(str(r.account_id), r.closing_balance, r.entry_count) for r in rows] == [
        (a["id"], D(f"{i + 1}0.00"), 1) for i, a in enumerate(accounts)
    ]
    notes = (await http.get("/api/v1/notifications", headers=org.headers["member"])).json()["items"]
    assert not [n for n in notes if n["kind"] == "statement_ready"]


async def test_a_scheduled_run_works_on_the_month_just_ended(temporal_env, settings, worker):
    # What the schedule sends: the time zone alone. Started by hand, "now" is the scheduled time.
    result = await temporal_env.client.execute_workflow(
        "MonthlyStatementsWorkflow",
        {"timezone": "Pacific/Auckland"},
        id=f"test-statements-{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue,
        result_type=StatementRunResult,
    )
    today = datetime.now(ZoneInfo("Pacific/Auckland")).date().replace(day=1)
    assert result.period == f"{today - timedelta(days=1):%Y-%m}"


async def test_statement_errors_and_visibility(http, su, db):
    org = await make_org(http, su)
    other = await make_org(http, su)
    account = await open_account(http, su, org.id, owner_id=org.users["member"]["id"])
    _, stranger = await make_user(http, su, "member", org.id)
    base = f"/api/v1/accounts/{account['id']}/statements"

    assert_error(await http.get(f"{base}/2025-07.pdf", headers=org.headers["member"]), 404, "not_found")
    for bad in ("2025-13", "2025-7", "July-2025", "0000-01"):
        error = assert_error(await http.get(f"{base}/{bad}.pdf", headers=org.headers["member"]), 422, "invalid_period")
        assert error["details"]["period"] == bad
    # Another member of the same organization and another organization's admin don't see the account at all.
    for headers in (stranger, other.headers["org_admin"]):
        assert_error(await http.get(base, headers=headers), 404, "not_found")
        assert_error(await http.get(f"{base}/2025-07.pdf", headers=headers), 404, "not_found")
    assert_error(await http.get(base), 401, "unauthorized")
    # Staff of the account's organization do.
    page = (await http.get(base, headers=org.headers["operator"])).json()
    assert page == {"items": [], "total": 0, "limit": 50, "offset": 0}
    assert_error(await http.get(f"/api/v1/accounts/{uuid.uuid4()}/statements", headers=su), 404, "not_found")
    # A run for a malformed month, or one not over yet (statements are written once), is refused.
    for bad in ("2025-13", "0000-01", "2025/10"):
        assert_error(await http.post("/api/v1/statements/runs", json={"period": bad}, headers=su), 422)
    this_month = f"{datetime.now(ZoneInfo('America/New_York')):%Y-%m}"
    assert_error(
        await http.post("/api/v1/statements/runs", json={"period": this_month}, headers=su), 422, "period_not_ended"
    )


async def test_the_workflow_refuses_a_month_not_over(temporal_env, settings, worker):
    this_month = f"{datetime.now(ZoneInfo('Pacific/Kiritimati')):%Y-%m}"  # ahead of everyone: never over here
    with pytest.raises(WorkflowFailureError) as failure:
        await temporal_env.client.execute_workflow(
            MonthlyStatementsWorkflow.run,
            StatementRunInput(period=this_month, timezone="Pacific/Kiritimati"),
            id=f"test-statements-{uuid.uuid4().hex[:8]}",
            task_queue=settings.task_queue,
        )
    assert failure.value.cause.type == "PeriodNotEnded"
    # A schedule with a time zone nobody knows fails its runs at once (rather than retrying a task forever).
    with pytest.raises(WorkflowFailureError) as failure:
        await temporal_env.client.execute_workflow(
            "MonthlyStatementsWorkflow",
            {"timezone": "Mars/Olympus_Mons"},
            id=f"test-statements-{uuid.uuid4().hex[:8]}",
            task_queue=settings.task_queue,
        )
    assert failure.value.cause.type == "InvalidInput"
