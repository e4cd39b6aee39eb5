"""Savings products, daily accrual against worked numbers per day-count convention, and month-end posting of a
few thousand accounts through a SIGKILL of the worker."""

import asyncio
import os
import signal
import uuid
from datetime import date, timedelta
from decimal import Decimal

import psycopg
from sqlalchemy import text
from temporalio.client import WorkflowExecutionStatus

from core import ledger
from core.db import execute_planned_afresh, libpq_url
from core.interest import ACCRUE_BATCH
from devstack import processes
from finance.daycount import DayCount
from finance.interest import TieredRate, accrue_day
from finance.money import round_money
from models.interest import AccrualRunInput, InterestPostingInput, MonthEndInput, PostingProgress, PostingSummary
from models.ledger import GL_CASH
from tests.conftest import assert_error, make_org, open_account
from workflows.daily_accrual import DailyAccrualWorkflow
from workflows.interest_posting import InterestPostingWorkflow
from workflows.month_end_posting import MonthEndPostingWorkflow

D = Decimal
TIERS = [{"up_to": "1000.00", "rate": "0.01"}, {"up_to": "5000.00", "rate": "0.02"}, {"up_to": None, "rate": "0.03"}]


async def create_product(http, su, **body) -> dict:
    response = await http.post(
        "/api/v1/savings-products", headers=su, json={"name": f"Savings {uuid.uuid4().hex[:8]}", **body}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def attach(http, su, account_id: str, product_id: str) -> dict:
    response = await http.put(
        f"/api/v1/accounts/{account_id}/savings-product", headers=su, json={"product_id": product_id}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_savings_products_and_attaching_them(http, su):
    flat = await create_product(http, su, annual_rate="0.0365", day_count="actual/365")
    assert (flat["annual_rate"], flat["tiers"], flat["active"]) == ("0.036500", None, True)
    tiered = await create_product(http, su, tiers=TIERS, day_count="30/360")
    assert tiered["annual_rate"] == "0.030000" and tiered["tiers"][0] == {"up_to": "1000.00", "rate": "0.010000"}

    for bad in (
        {"annual_rate": "0.01", "tiers": TIERS},  # both
        {},  # neither
        {"tiers": [{"up_to": "1000.00", "rate": "0.01"}]},  # last band not open
        {
            "tiers": [
                {"up_to": "5000.00", "rate": "0.01"},
                {"up_to": "1000.00", "rate": "0.02"},
                {"up_to": None, "rate": "0.03"},
            ]
        },  # bounds not increasing
        {"annual_rate": "1.5"},
        {"annual_rate": "0.01", "day_count": "actual/364"},
    ):
        assert_error(await http.post("/api/v1/savings-products", headers=su, json={"name": "Bad", **bad}), 422)
    assert_error(
        await http.post("/api/v1/savings-products", headers=su, json={"name": flat["name"], "annual_rate": "0.01"}),
        409,
        "duplicate",
    )
    patched = await http.patch(f"/api/v1/savings-products/{flat['id']}", headers=su, json={"tiers": TIERS})
    assert patched.status_code == 200 and patched.json()["tiers"] is not None, patched.text
    assert_error(await http.patch(f"/api/v1/savings-products/{flat['id']}", headers=su, json={"day_count": "1/1"}), 422)

    org = await make_org(http, su, roles=("member",))
    member = org.users["member"]["id"]
    savings = await open_account(http, su, org.id, member, type_="savings")
    loan = await open_account(http, su, org.id, member, type_="loan")
    assert_error(
        await http.put(f"/api/v1/accounts/{loan['id']}/savings-product", headers=su, json={"product_id": flat["id"]}),
        422,
        "not_a_deposit_account",
    )
    assert_error(
        await http.put(
            f"/api/v1/accounts/{savings['id']}/savings-product", headers=su, json={"product_id": str(uuid.uuid4())}
        ),
        422,
        "unknown_savings_product",
    )
    assert_error(
        await http.put(
            f"/api/v1/accounts/{savings['id']}/savings-product",
            headers=org.headers["member"],
            json={"product_id": flat["id"]},
        ),
        403,
    )
    assert (await attach(http, su, savings["id"], flat["id"]))["product"]["id"] == flat["id"]
    assert (await attach(http, su, savings["id"], tiered["id"]))["product_id"] == tiered["id"]
    seen = await http.get(f"/api/v1/accounts/{savings['id']}/savings-product", headers=org.headers["member"])
    assert seen.status_code == 200 and seen.json()["product"]["day_count"] == "30/360"

    assert (await http.delete(f"/api/v1/savings-products/{tiered['id']}", headers=su)).status_code == 204
    listed = (
        await http.get("/api/v1/savings-products", headers=org.headers["member"], params={"name": tiered["name"]})
    ).json()
    assert listed["total"] == 0
    assert (await http.delete(f"/api/v1/accounts/{savings['id']}/savings-product", headers=su)).status_code == 204
    assert (await http.get(f"/api/v1/accounts/{savings['id']}/savings-product", headers=su)).json()[
        "product_id"
    ] is None


# --- a month of accrual, by hand ---------------------------------------------------------------------------------
#
# October 2026 (31 days). Each account holds 10,000.00 from September 30 and 15,000.00 from October 16 (a
# deposit effective that day): days 1-15 accrue on 10,000.00, days 16-31 on 15,000.00.
#   actual/365 at 3.65 %: 10,000 x 0.0365 / 365 = 1.00 a day, 15,000 -> 1.50: 15 x 1.00 + 16 x 1.50 = 39.00
#   actual/360 at 4.50 %: 10,000 x 0.045 / 360 = 1.25, 15,000 -> 1.875: 15 x 1.25 + 16 x 1.875 = 48.75
#   30/360 at 3.60 %: 1.00 and 1.50 a day, but the 31st accrues nothing: 15 x 1.00 + 15 x 1.50 = 37.50
#   actual/actual at 2 % (2026 has 365 days): 10,000 x 0.02 / 365 = 0.547945205479... -> 0.5479452055;
#       15,000 -> 0.821917808219... -> 0.8219178082; 15 x 0.5479452055 + 16 x 0.8219178082
#       = 8.2191780825 + 13.1506849312 = 21.3698630137, posts 21.37
#   tiered 1 % to 1,000, 2 % to 5,000, 3 % above, actual/365: 10,000 earns 10 + 80 + 150 = 240 a year,
#       240 / 365 = 0.657534246575... -> 0.6575342466; 15,000 earns 10 + 80 + 300 = 390, 390 / 365 =
#       1.068493150684... -> 1.0684931507; 15 x 0.6575342466 + 16 x 1.0684931507 = 9.8630136990 + 17.0958904112
#       = 26.9589041102, posts 26.96
#   overdrawn by 200.00 all month at actual/365 3.65 %: a deposit product accrues nothing on it, posts nothing.
WORKED = {
    "act365": ({"annual_rate": "0.0365", "day_count": "actual/365"}, D("39.0000000000"), D("39.00")),
    "act360": ({"annual_rate": "0.045", "day_count": "actual/360"}, D("48.7500000000"), D("48.75")),
    "30/360": ({"annual_rate": "0.036", "day_count": "30/360"}, D("37.5000000000"), D("37.50")),
    "actact": ({"annual_rate": "0.02", "day_count": "actual/actual"}, D("21.3698630137"), D("21.37")),
    "tiered": ({"tiers": TIERS, "day_count": "actual/365"}, D("26.9589041102"), D("26.96")),
}
OCTOBER = [date(2026, 10, 1) + timedelta(days=i) for i in range(31)]


async def fund(db, account_id: str, amount: Decimal, effective: date, key: str) -> None:
    """A deposit effective on a past day (the API's deposits are effective today)."""
    async with db.session() as session, session.begin():
        cash = (
            await session.execute(
                text("SELECT id FROM ledger_accounts WHERE code = :c AND currency = 'USD'"), {"c": GL_CASH}
            )
        ).scalar_one()
        await ledger.post_entry(
            session,
            idempotency_key=f"test-interest:{key}",
            entry_type="cash_deposit",
            description="test deposit",
            effective_date=effective,
            legs=[ledger.Leg(cash, amount), ledger.Leg(uuid.UUID(account_id), -amount)],
        )


def reference_rate(product: dict):
    if product["tiers"]:
        return TieredRate([(D(t["up_to"]) if t["up_to"] else None, D(t["rate"])) for t in product["tiers"]])
    return D(product["annual_rate"])


async def test_a_month_of_accrual_per_convention_then_posted(http, su, db, worker, temporal_env, settings):
    org = await make_org(http, su, roles=("member",))
    accounts, products = {}, {}
    for name, (terms, _, _) in WORKED.items():
        products[name] = await create_product(http, su, **terms)
        accounts[name] = (await open_account(http, su, org.id, org.users["member"]["id"], type_="savings"))["id"]
        await attach(http, su, accounts[name], products[name]["id"])
        await fund(db, accounts[name], D("10000.00"), date(2026, 9, 30), f"{accounts[name]}:1")
        await fund(db, accounts[name], D("5000.00"), date(2026, 10, 16), f"{accounts[name]}:2")
    overdrawn = (await open_account(http, su, org.id, org.users["member"]["id"]))["id"]
    await attach(http, su, overdrawn, products["act365"]["id"])
    await fund(db, overdrawn, D("-200.00"), date(2026, 9, 30), overdrawn)

    client = temporal_env.client
    for day in OCTOBER:
        await client.execute_workflow(
            DailyAccrualWorkflow.run,
            AccrualRunInput(day=day),
            id=f"test-accrual-{day}",
            task_queue=settings.task_queue,
            execution_timeout=timedelta(seconds=60),
        )
    again = await client.execute_workflow(
        DailyAccrualWorkflow.run,
        AccrualRunInput(day=OCTOBER[4]),
        id=f"test-accrual-{OCTOBER[4]}-again",
        task_queue=settings.task_queue,
        execution_timeout=timedelta(seconds=60),
    )

    ids = [uuid.UUID(a) for a in [*accounts.values(), overdrawn]]
    async with db.session() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT account_id, day, balance, amount FROM interest_accruals WHERE account_id = ANY(:ids) "
                    "ORDER BY account_id, day"
                ),
                {"ids": ids},
            )
        ).all()
        fifth = (
            await session.execute(
                text("SELECT count(*), sum(amount) FROM interest_accruals WHERE day = :d"), {"d": OCTOBER[4]}
            )
        ).one()
    assert len(rows) == 31 * len(ids)  # once per account and day, though the 5th ran twice
    assert (again.accounts, again.accrued) == (fifth[0], fifth[1])
    by_account: dict[str, list] = {}
    for row in rows:
        by_account.setdefault(str(row.account_id), []).append(row)
    for name, (_, accrued, _) in WORKED.items():
        days = by_account[accounts[name]]
        assert [r.balance for r in days] == [D("10000.00")] * 15 + [D("15000.00")] * 16
        assert sum(r.amount for r in days) == accrued, name
        convention, rate = DayCount(products[name]["day_count"]), reference_rate(products[name])
        assert [r.amount for r in days] == [accrue_day(r.balance, rate, convention, r.day) for r in days], name
    assert {r.amount for r in by_account[overdrawn]} == {D("0")}
    assert {r.balance for r in by_account[overdrawn]} == {D("-200.00")}

    summary = await client.execute_workflow(
        MonthEndPostingWorkflow.run,
        MonthEndInput(period="2026-10"),
        id="test-month-end-2026-10",
        task_queue=settings.task_queue,
        execution_timeout=timedelta(seconds=120),
    )
    async with db.session() as session:
        posted = dict(
            (
                await session.execute(
                    text(
                        "SELECT account_id::text, amount FROM interest_postings WHERE period = '2026-10' AND account_id = ANY(:ids)"
                    ),
                    {"ids": ids},
                )
            ).all()
        )
        entries = (
            await session.execute(
                text(
                    "SELECT j.entry_type, j.description, j.effective_date, p.amount FROM journal_entries j "
                    "JOIN postings p ON p.entry_id = j.id WHERE p.account_id = :a AND j.entry_type = 'interest_posting'"
                ),
                {"a": uuid.UUID(accounts["actact"])},
            )
        ).all()
    assert posted == {accounts[name]: amount for name, (_, _, amount) in WORKED.items()}
    assert entries == [("interest_posting", "Interest for 2026-10", date(2026, 10, 31), D("-21.37"))]
    assert summary.period == "2026-10" and summary.total >= sum(a for _, _, a in WORKED.values())
    balance = (await http.get(f"/api/v1/accounts/{accounts['actact']}", headers=su)).json()["ledger_balance"]
    assert balance == "15021.37"


KEYSET = text(
    "SELECT /* keyset probe */ count(*) AS n, (array_agg(id ORDER BY id DESC))[1] AS last "
    "FROM (SELECT id FROM ledger_accounts "
    "WHERE CAST(:after AS uuid) IS NULL OR id > CAST(:after AS uuid) ORDER BY id LIMIT :size) b"
)
PREPARED_KEYSET = text(
    "SELECT count(*) FROM pg_prepared_statements "
    "WHERE statement LIKE '%keyset probe%' AND statement NOT LIKE '%pg_prepared_statements%'"
)


async def test_batch_statements_are_planned_afresh_every_run_never_prepared(db):
    """The accrual's and the posting's batches run many times on one connection: planned afresh each time, so
    their keyset cursor stays an index range and the triggers they fire keep their own cached plans
    (core/db.execute_planned_afresh). The same statement through session.execute is prepared from its 5th run."""
    async with db.session() as session, session.begin():
        after, seen = None, 0
        for _ in range(8):
            row = await execute_planned_afresh(session, KEYSET, {"after": after, "size": 1})
            if row.n == 0:
                break
            after, seen = row.last, seen + row.n
        assert seen >= 6  # the GL accounts alone
        assert (await session.execute(PREPARED_KEYSET)).scalar_one() == 0
        for _ in range(8):
            await session.execute(KEYSET, {"after": None, "size": 1})
        assert (await session.execute(PREPARED_KEYSET)).scalar_one() == 1


async def test_the_sql_agrees_with_finance_interest_every_day_of_a_leap_year(http, su, db):
    """Every day of 2028 and the turn of the year, each convention, a balance that changes (and goes through
    the tier bounds): each stored accrual equals finance.interest.accrue_day. Rolled back at the end."""
    org = await make_org(http, su, roles=("member",))
    terms = [{"annual_rate": "0.0437", "day_count": c} for c in ("actual/365", "actual/360", "30/360", "actual/actual")]
    terms.append({"tiers": TIERS, "day_count": "30/360"})
    accounts = {}
    for term in terms:
        product = await create_product(http, su, **term)
        account = (await open_account(http, su, org.id, org.users["member"]["id"], type_="savings"))["id"]
        await attach(http, su, account, product["id"])
        accounts[account] = product
    days = [date(2027, 12, 31) + timedelta(days=i) for i in range(368)]  # to 2029-01-01
    # 12,345.67 at first, then every 40 days 2,987.65 less, five times (through the tier bounds, overdrawn at
    # the end: a deposit product accrues nothing on a negative balance), then 3,987.65 more, four times.
    changes = [(days[0], D("12345.67"))] + [
        (day, D("-2987.65") if i < 5 else D("3987.65")) for i, day in enumerate(days[40::40])
    ]
    async with db.session() as session, session.begin():
        cash = (
            await session.execute(
                text("SELECT id FROM ledger_accounts WHERE code = :c AND currency = 'USD'"), {"c": GL_CASH}
            )
        ).scalar_one()
        for account in accounts:
            for n, (day, amount) in enumerate(changes):
                await ledger.post_entry(
                    session,
                    idempotency_key=f"test-leap:{account}:{n}",
                    entry_type="cash_deposit",
                    description="test",
                    effective_date=day,
                    legs=[ledger.Leg(cash, amount), ledger.Leg(uuid.UUID(account), -amount)],
                )
        for day in days:
            after = None
            while True:
                row = (await session.execute(ACCRUE_BATCH, {"day": day, "after": after, "size": 1000})).one()
                if row.accounts == 0:
                    break
                after = row.last_account_id
        rows = (
            await session.execute(
                text(
                    "SELECT account_id::text AS account, day, balance, amount FROM interest_accruals "
                    "WHERE account_id = ANY(:ids) ORDER BY account_id, day"
                ),
                {"ids": [uuid.UUID(a) for a in accounts]},
            )
        ).all()
        await session.rollback()
    assert len(rows) == len(days) * len(accounts)
    assert {r.balance for r in rows} >= {D("12345.67"), D("395.07"), D("-2592.58"), D("5382.72")}
    mismatches = [
        (r.account, r.day, r.amount, expected)
        for r in rows
        if r.amount
        != (
            expected := accrue_day(
                max(r.balance, D(0)),
                reference_rate(accounts[r.account]),
                DayCount(accounts[r.account]["day_count"]),
                r.day,
            )
        )
    ]
    assert mismatches == []


# --- month-end posting of a few thousand accounts through a SIGKILL ------------------------------------------------

N = 3000
PERIOD, FIRST, LAST = "2026-09", date(2026, 9, 1), date(2026, 9, 30)


def seeded_amount(i: int, day: int) -> Decimal:
    """The accrual the seed gives account i (1-based) on a day of the month; the same formula as SEED_ACCRUALS."""
    if i % 10 == 0:
        return D("0")  # nothing accrued: nothing posted
    if i in (1, 2):  # exactly half a cent rounds up; just under it rounds to nothing
        return (D("0.0050000000") if i == 1 else D("0.0049999999")) if day == 1 else D("0")
    return D((i * 829348951 + day * 7000021) % 10**10).scaleb(-10)


SEED_ACCRUALS = text("""
INSERT INTO interest_accruals (account_id, day, product_id, balance, amount)
SELECT t.id, d::date, :product, 0,
       CASE WHEN t.i % 10 = 0 THEN 0
            WHEN t.i IN (1, 2) THEN CASE WHEN extract(day FROM d) = 1
                                         THEN CASE t.i WHEN 1 THEN 0.0050000000 ELSE 0.0049999999 END ELSE 0 END
            ELSE ((t.i * 829348951 + extract(day FROM d)::bigint * 7000021) % 10000000000) / 10000000000.0 END
FROM unnest(CAST(:ids AS uuid[])) WITH ORDINALITY AS t(id, i),
     generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') AS d
""")


async def seed(db, ids: list[uuid.UUID]) -> None:
    """N savings accounts with a month of accruals, set-based, and the month's days recorded as accrued (so the
    posting has no day to catch up). They were detached from their product after the month (product_id NULL), so
    other tests' accrual runs skip them, while month-end still posts them."""
    product = uuid.uuid4()
    async with db.session() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO savings_products (id, name, annual_rate, day_count, active) "
                "VALUES (:id, :name, 0.05, 'actual/365', true)"
            ),
            {"id": product, "name": f"Seeded {product.hex[:8]}"},
        )
        await session.execute(
            text(
                "INSERT INTO ledger_accounts (id, name, kind, type, normal_balance, currency, status) "
                "SELECT id, 'Seeded savings ' || i, 'internal', 'savings', 'credit', 'USD', 'active' "
                "FROM unnest(CAST(:ids AS uuid[])) WITH ORDINALITY AS t(id, i)"
            ),
            {"ids": ids},
        )
        await session.execute(
            text(
                "INSERT INTO savings_accounts (account_id, product_id) "
                "SELECT id, NULL FROM unnest(CAST(:ids AS uuid[])) AS t(id)"
            ),
            {"ids": ids},
        )
        await session.execute(SEED_ACCRUALS, {"product": product, "ids": ids, "first": FIRST, "last": LAST})
        await session.execute(
            text(
                "INSERT INTO accrual_runs (day, accounts, accrued) SELECT d::date, 0, 0 FROM generate_series(CAST(:first "
                "AS date), CAST(:last AS date), interval '1 day') AS d ON CONFLICT DO NOTHING"
            ),
            {"first": FIRST, "last": LAST},
        )


def start_worker(settings, log_path):
    port = processes.free_port()
    child = processes.start(
        processes.python("worker.py"),
        env={
            "DATABASE_URL": settings.database_url,
            "TEMPORAL_ADDRESS": settings.temporal_address,
            "TASK_QUEUE": settings.task_queue,
            "WORKER_METRICS_ADDRESS": f"127.0.0.1:{port}",
            "SMTP_HOST": settings.smtp_host,
            "SMTP_PORT": str(settings.smtp_port),
            "INTEREST_BATCH_SIZE": "100",
            "INTEREST_CONTINUE_AS_NEW_AFTER": "4",
        },
        log_path=log_path,
    )
    processes.wait_for_port(port, child, name="worker")
    return child


async def waiting_on_lock(database_url: str, timeout: float = 60) -> None:
    """Polled from a connection of its own: inside the lock's transaction pg_stat_activity would not change."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as watch:
        for _ in range(int(timeout * 10)):
            if watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%interest_postings%' AND pid <> pg_backend_pid()"
            ).fetchone()[0]:  # type: ignore[index]  # count(*): one row
                return
            await asyncio.sleep(0.1)
    raise AssertionError("no posting batch reached the locked account")


async def test_month_end_posting_through_a_sigkill_posts_every_account_once(
    settings, su, db, temporal_env, mailbox, tmp_path
):
    ids = [uuid.uuid4() for _ in range(N)]
    await seed(db, ids)
    expected = {ids[i - 1]: round_money(sum(seeded_amount(i, day) for day in range(1, 31))) for i in range(1, N + 1)}
    expected = {account: amount for account, amount in expected.items() if amount > 0}
    assert expected[ids[0]] == D("0.01") and ids[1] not in expected and ids[9] not in expected
    # Freeze the posting halfway: a batch that posts to this account waits on its row lock.
    middle = next(a for a in sorted(ids)[N // 2 :] if a in expected)

    client = temporal_env.client
    crash = settings.model_copy(update={"task_queue": f"interest-crash-{uuid.uuid4().hex[:8]}"})
    workers = [start_worker(crash, tmp_path / "worker-1.log")]
    try:
        with psycopg.connect(libpq_url(settings.database_url)) as lock:
            lock.execute("SELECT id FROM ledger_accounts WHERE id = %s FOR UPDATE", (middle,))
            launcher = await client.start_workflow(
                MonthEndPostingWorkflow.run,
                MonthEndInput(period=PERIOD),
                id=f"month-end-{PERIOD}",
                task_queue=crash.task_queue,
            )
            await waiting_on_lock(settings.database_url)
            posting = client.get_workflow_handle(f"interest-posting-{PERIOD}")
            halfway: PostingProgress = await posting.query(InterestPostingWorkflow.progress)
            assert 0 < halfway.accounts_done < halfway.accounts_total and halfway.amount_posted > 0, halfway
            os.killpg(workers[0].pid, signal.SIGKILL)
            workers[0].wait(timeout=30)
            lock.rollback()
        async with db.session() as session:
            before = (
                await session.execute(text("SELECT count(*) FROM interest_postings WHERE period = :p"), {"p": PERIOD})
            ).scalar_one()
        assert 0 < before < len(expected)

        workers.append(start_worker(crash, tmp_path / "worker-2.log"))
        summary: PostingSummary = await asyncio.wait_for(launcher.result(), timeout=120)

        final: PostingProgress = await posting.query(InterestPostingWorkflow.progress)
        runs = [w async for w in client.list_workflows(f"WorkflowId = 'interest-posting-{PERIOD}'")]
        # A second launch of the period starts nothing; a rerun of the posting itself posts nothing new.
        second = await client.execute_workflow(
            MonthEndPostingWorkflow.run,
            MonthEndInput(period=PERIOD),
            id=f"month-end-{PERIOD}-again",
            task_queue=crash.task_queue,
            execution_timeout=timedelta(seconds=60),
        )
        rerun = await client.execute_workflow(
            InterestPostingWorkflow.run,
            InterestPostingInput(period=PERIOD),
            id=f"interest-posting-{PERIOD}-rerun",
            task_queue=crash.task_queue,
            execution_timeout=timedelta(seconds=120),
        )
    finally:
        for worker in workers:
            processes.stop(worker)

    total = sum(expected.values())
    async with db.session() as session:
        per_account = dict(
            (
                await session.execute(
                    text(
                        "SELECT account_id, amount FROM interest_postings WHERE period = :p AND account_id = ANY(:ids)"
                    ),
                    {"p": PERIOD, "ids": ids},
                )
            ).all()
        )
        ledger_legs = (
            await session.execute(
                text(
                    "SELECT count(DISTINCT j.id), count(*), sum(CASE WHEN p.account_id = ip.account_id THEN -p.amount END) "
                    "FROM interest_postings ip JOIN journal_entries j ON j.id = ip.journal_entry_id "
                    "JOIN postings p ON p.entry_id = j.id WHERE ip.period = :p AND ip.account_id = ANY(:ids)"
                ),
                {"p": PERIOD, "ids": ids},
            )
        ).one()
        keys = (
            await session.execute(
                text("SELECT count(*) FROM journal_entries WHERE idempotency_key LIKE :k"),
                {"k": f"interest:{PERIOD}:%"},
            )
        ).scalar_one()
        books = (await session.execute(text("SELECT sum(amount) FROM postings"))).scalar_one()
        stored = (
            await session.execute(
                text("SELECT accounts, total FROM interest_posting_runs WHERE period = :p"), {"p": PERIOD}
            )
        ).one()
    assert per_account == expected  # every account once, at its own rounded amount
    assert ledger_legs == (len(expected), 2 * len(expected), total)
    assert keys == len(expected)
    assert books == 0
    assert (summary.accounts, summary.total) == (stored.accounts, stored.total) == (len(expected), total)
    assert (final.accounts_done, final.posted, final.amount_posted) == (final.accounts_total, len(expected), total)
    assert len(runs) >= 3 and sum(r.status == WorkflowExecutionStatus.CONTINUED_AS_NEW for r in runs) >= 2, runs
    assert (second.accounts, second.total) == (len(expected), total)
    assert (rerun.accounts, rerun.total) == (len(expected), total)
    async with db.session() as session:
        assert (
            await session.execute(
                text("SELECT count(*) FROM journal_entries WHERE idempotency_key LIKE :k"),
                {"k": f"interest:{PERIOD}:%"},
            )
        ).scalar_one() == keys

    message = await mailbox.wait_for(lambda m: f"Interest posted for {PERIOD}" in m["Subject"])
    assert f"{len(expected)} accounts" in message["Subject"]
    assert f"${total:,.2f}" in message.get_body(("plain",)).get_content()
    assert len([m for m in mailbox.messages if f"Interest posted for {PERIOD}" in m["Subject"]]) == len(
        {m["To"] for m in mailbox.messages if f"Interest posted for {PERIOD}" in m["Subject"]}
    )
