"""Nothing posts into a closed account: closing waits for the money in flight and the interest owed, accrual and
posting pass closed accounts by, an ACH debit is not presented into one, and the database refuses the posting
whatever the code path (but for a return, which unwinds money that moved while the account was open)."""

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core import ledger
from core.crypto import AccountNumberCipher
from models.interest import AccrualRunInput, InterestPostingInput, MonthEndInput
from models.ledger import GL_CASH
from tests.conftest import assert_error, make_org, open_account
from tests.integration.test_ach import FINAL, link_external, pay, wait_status
from tests.integration.test_interest import attach, create_product, fund
from tests.integration.test_loans import apply
from workflows.daily_accrual import DailyAccrualWorkflow
from workflows.interest_posting import InterestPostingWorkflow
from workflows.month_end_posting import MonthEndPostingWorkflow

D = Decimal


async def close(http, su, account_id: str):
    return await http.post(f"/api/v1/accounts/{account_id}/close", headers=su)


async def close_behind_the_apis_back(db, account_id) -> None:
    """As a close from before these rules, or by hand in SQL, would have left it."""
    async with db.session() as session, session.begin():
        await session.execute(
            text("UPDATE ledger_accounts SET status = 'closed', closed_at = now() WHERE id = :a"),
            {"a": uuid.UUID(str(account_id))},
        )


async def test_closing_is_refused_while_a_payment_is_in_flight(http, su, sandbox_url, odfi):
    """An empty account with an ACH debit on its way in: closing it now would leave the debit to post into a
    closed account. Refused until the payment has ended."""
    org = await make_org(http, su)
    org.account = await open_account(http, su, org.id, org.users["member"]["id"])
    org.external = await link_external(http, sandbox_url, org)
    payment = await pay(http, org, "ach_debit", "35.00")
    error = assert_error(await close(http, su, org.account["id"]), 409, "payments_in_flight")
    assert error["details"]["payment_ids"] == [payment["id"]]
    done = await wait_status(http, org.headers["org_admin"], payment["id"])
    assert done["status"] == "completed"
    assert_error(await close(http, su, org.account["id"]), 409, "balance_not_zero")  # the debit's 35.00 is there


async def test_closing_is_refused_while_a_loan_pays_into_or_draws_from_the_account(http, su, sandbox_url):
    org = await make_org(http, su, roles=("org_admin", "member"))
    product = (
        await http.post(
            "/api/v1/loan-products",
            headers=su,
            json={
                "name": f"Closing {uuid.uuid4().hex[:6]}",
                "annual_rate": "0.065",
                "min_term": 6,
                "max_term": 360,
                "min_amount": "1000.00",
                "max_amount": "500000.00",
                "amortization": "declining_balance",
                "frequency": "monthly",
                "day_count": "30/360",
                "grace_days": 10,
                "late_fee": "25.00",
            },
        )
    ).json()
    org.account = await open_account(http, su, org.id, org.users["member"]["id"])
    loan = await apply(http, sandbox_url, org, product)
    error = assert_error(await close(http, su, org.account["id"]), 409, "loans_open")
    assert error["details"]["loan_ids"] == [loan["id"]]


async def test_closing_waits_until_the_interest_it_earned_is_posted(http, su, db, worker, temporal_env, settings):
    """10,000.00 from May 1 2025, emptied on May 11, at 3.65 % actual/365: ten days of 1.00. Until those days are
    accrued, and the month is posted and that interest moved out, closing would lose the member's interest."""
    org = await make_org(http, su, roles=("member",))
    product = await create_product(http, su, annual_rate="0.0365", day_count="actual/365")
    account = (await open_account(http, su, org.id, org.users["member"]["id"], type_="savings"))["id"]
    await attach(http, su, account, product["id"])
    await fund(db, account, D("10000.00"), date(2025, 5, 1), f"closing:{account}:in")
    await fund(db, account, D("-10000.00"), date(2025, 5, 11), f"closing:{account}:out")

    error = assert_error(await close(http, su, account), 409, "interest_not_posted")
    assert error["details"] == {"unaccrued_from": "2025-05-01", "unposted": []}  # no day accrued yet

    client = temporal_env.client
    for day in (date(2025, 5, 1) + timedelta(days=i) for i in range(11)):
        await client.execute_workflow(
            DailyAccrualWorkflow.run,
            AccrualRunInput(day=day),
            id=f"test-closing-accrual-{day}",
            task_queue=settings.task_queue,
            execution_timeout=timedelta(seconds=60),
        )
    error = assert_error(await close(http, su, account), 409, "interest_not_posted")
    assert error["details"] == {"unaccrued_from": None, "unposted": [{"period": "2025-05", "accrued": "10.0000000000"}]}

    await client.execute_workflow(
        MonthEndPostingWorkflow.run,
        MonthEndInput(period="2025-05"),
        id="test-closing-month-end-2025-05",
        task_queue=settings.task_queue,
        execution_timeout=timedelta(seconds=120),
    )
    error = assert_error(await close(http, su, account), 409, "balance_not_zero")
    assert error["details"]["ledger_balance"] == "10.00"
    await fund(db, account, D("-10.00"), date(2025, 6, 1), f"closing:{account}:interest-out")
    closed = await close(http, su, account)
    assert closed.status_code == 200 and closed.json()["status"] == "closed", closed.text


async def test_accrual_and_posting_pass_a_closed_account_by(http, su, db, worker, temporal_env, settings):
    """Two accounts with July 2025 accrued; one of them closed behind the API's back. The month posts the open
    one and passes the closed one by (the posting does not fail on it); the next day accrues only the open one."""
    org = await make_org(http, su, roles=("member",))
    product = await create_product(http, su, annual_rate="0.0365", day_count="actual/365")
    accounts = []
    for _ in range(2):
        account = (await open_account(http, su, org.id, org.users["member"]["id"], type_="savings"))["id"]
        await attach(http, su, account, product["id"])
        await fund(db, account, D("10000.00"), date(2025, 6, 30), f"passed-by:{account}")
        accounts.append(uuid.UUID(account))
    open_one, closed_one = accounts
    async with db.session() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO interest_accruals (account_id, day, product_id, balance, amount) "
                "SELECT a, d::date, :p, 10000, 1 FROM unnest(CAST(:ids AS uuid[])) a, "
                "generate_series(DATE '2025-07-01', DATE '2025-07-31', interval '1 day') d"
            ),
            {"p": uuid.UUID(product["id"]), "ids": accounts},
        )
        await session.execute(
            text(  # July counts as accrued: the posting has no day to catch up
                "INSERT INTO accrual_runs (day, accounts, accrued) SELECT d::date, 0, 0 "
                "FROM generate_series(DATE '2025-07-01', DATE '2025-07-31', interval '1 day') d ON CONFLICT DO NOTHING"
            )
        )
    await close_behind_the_apis_back(db, closed_one)

    client = temporal_env.client
    await client.execute_workflow(
        InterestPostingWorkflow.run,
        InterestPostingInput(period="2025-07"),
        id=f"test-passed-by-{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue,
        execution_timeout=timedelta(seconds=120),
    )
    await client.execute_workflow(
        DailyAccrualWorkflow.run,
        AccrualRunInput(day=date(2025, 8, 1)),
        id=f"test-passed-by-accrual-{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue,
        execution_timeout=timedelta(seconds=60),
    )
    async with db.session() as session:
        posted = dict(
            (
                await session.execute(
                    text(
                        "SELECT account_id, amount FROM interest_postings WHERE period = '2025-07' AND account_id = ANY(:ids)"
                    ),
                    {"ids": accounts},
                )
            ).all()
        )
        accrued = (
            (
                await session.execute(
                    text(
                        "SELECT account_id FROM interest_accruals WHERE day = '2025-08-01' AND account_id = ANY(:ids)"
                    ),
                    {"ids": accounts},
                )
            )
            .scalars()
            .all()
        )
    assert posted == {open_one: D("31.00")}
    assert accrued == [open_one]


async def test_the_database_refuses_a_posting_to_a_closed_account_but_lets_a_return_unwind(http, su, db):
    org = await make_org(http, su, roles=())
    account = uuid.UUID((await open_account(http, su, org.id))["id"])
    await close_behind_the_apis_back(db, account)

    async def post(entry_type: str, key: str) -> None:
        async with db.session() as session, session.begin():
            cash = (
                await session.execute(
                    text("SELECT id FROM ledger_accounts WHERE code = :c AND currency = 'USD'"), {"c": GL_CASH}
                )
            ).scalar_one()
            await ledger.post_entry(
                session,
                idempotency_key=f"closed:{account}:{key}",
                entry_type=entry_type,
                description="into a closed account",
                effective_date=datetime.now(UTC).date(),
                legs=[ledger.Leg(cash, D("5.00")), ledger.Leg(account, D("-5.00"))],
            )

    with pytest.raises(ledger.PostingToClosedAccount, match=str(account)):
        await post("cash_deposit", "deposit")
    await post("ach_return", "return")  # the bank took the money back: the books must say so
    balance = (await http.get(f"/api/v1/accounts/{account}", headers=su)).json()
    assert (balance["status"], balance["ledger_balance"]) == ("closed", "5.00")


async def test_each_ledger_rule_has_its_own_exception(http, su, db):
    org = await make_org(http, su, roles=())
    a, b = [uuid.UUID((await open_account(http, su, org.id))["id"]) for _ in range(2)]

    async def broken(statements: list[tuple[str, dict]]) -> ledger.LedgerError | None:
        try:
            async with db.session() as session, session.begin():
                for sql, params in statements:
                    await session.execute(text(sql), params)
        except DBAPIError as exc:
            return ledger.ledger_error(exc)
        raise AssertionError("the database let it through")

    def entry(entry_id) -> tuple[str, dict]:
        return (
            "INSERT INTO journal_entries (id, idempotency_key, entry_type, description, effective_date) "
            "VALUES (:id, :key, 'test', 'raw', current_date)",
            {"id": entry_id, "key": f"rules:{entry_id}"},
        )

    unbalanced, lonely, fine = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert isinstance(
        await broken(
            [
                entry(unbalanced),
                (
                    "INSERT INTO postings (entry_id, account_id, amount) VALUES (:e, :a, 1), (:e, :b, -2)",
                    {"e": unbalanced, "a": a, "b": b},
                ),
            ]
        ),
        ledger.UnbalancedEntry,
    )
    assert isinstance(await broken([entry(lonely)]), ledger.EntryWithoutPostings)
    async with db.session() as session, session.begin():
        for sql, params in (
            entry(fine),
            (
                "INSERT INTO postings (entry_id, account_id, amount) VALUES (:e, :a, 1), (:e, :b, -1)",
                {"e": fine, "a": a, "b": b},
            ),
        ):
            await session.execute(text(sql), params)
    assert isinstance(
        await broken([("UPDATE postings SET amount = 2 WHERE entry_id = :e", {"e": fine})]),
        ledger.PostingsAreAppendOnly,
    )


async def test_a_debit_into_an_account_closed_behind_the_apis_back_is_not_presented_again(
    http, su, sandbox_url, odfi, db, settings
):
    """A debit returned R01 on its first presentment would be presented again; its account was closed meanwhile
    (behind the API's back: the API refuses while the payment is in flight). The return still unwinds the money,
    and the payment fails with the reason instead of posting a second time into the closed account."""
    org = await make_org(http, su)
    org.account = await open_account(http, su, org.id, org.users["member"]["id"])
    org.external = await link_external(http, sandbox_url, org)
    await odfi.put("/odfi/_control", json={"return_delay_ms": 3000})  # time to close it before the return
    try:
        payment = await pay(http, org, "ach_debit", "40.11")  # R01 on its first presentment, settles the second
        await wait_status(http, org.headers["org_admin"], payment["id"], {"pending_settlement", *FINAL})
        await close_behind_the_apis_back(db, org.account["id"])
        done = await wait_status(http, org.headers["org_admin"], payment["id"])
    finally:
        await odfi.put("/odfi/_control", json={"return_delay_ms": 200})
    assert (done["status"], done["failure_code"], done["presentments"]) == ("failed", "account_closed", 1), done
    async with db.session() as session:
        encrypted = (
            await session.execute(
                text("SELECT account_number_encrypted FROM external_accounts WHERE id = :e"),
                {"e": uuid.UUID(org.external["id"])},
            )
        ).scalar_one()
        entries = (
            await session.execute(
                text(
                    "SELECT j.entry_type, p.amount FROM postings p JOIN journal_entries j ON j.id = p.entry_id "
                    "WHERE p.account_id = :a ORDER BY p.id"
                ),
                {"a": uuid.UUID(org.account["id"])},
            )
        ).all()
    assert entries == [("ach_submit", D("-40.11")), ("ach_return", D("40.11"))]
    number = AccountNumberCipher.from_settings(settings).decrypt(encrypted)
    received = (await odfi.get("/odfi/entries")).json()["entries"]
    assert [e["entry_description"] for e in received if e["account_number"] == number] == ["PAYMENT"]
