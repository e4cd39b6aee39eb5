"""Demo interest and statements for `make run`: Alice's savings account earns on a demo savings product and gets a
month of history (opened the month before last, a deposit, a withdrawal last month); the real workflows then
accrue each day of last month and post its interest (`interest-posting-YYYY-MM`), and last month's statements are
written through the API, so a statement PDF with its interest line is there to open at once. Idempotent: fixed
keys per month, one workflow id per day and period, and a statement is written once."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import text
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from core import ledger
from core.config import get_settings
from core.db import Database
from core.task_queues import queue_for
from core.temporal import connect
from devstack.seed import demo_id
from models.interest import AccrualRunInput, MonthEndInput
from models.ledger import GL_CASH
from models.statements import period_bounds
from workflows.daily_accrual import DailyAccrualWorkflow
from workflows.month_end_posting import MonthEndPostingWorkflow

ACCOUNT = demo_id("account:alice-savings")
PRODUCT = demo_id("savings-product:demo")


def local_today() -> date:
    """Today where the schedules run: a month is over there, or the API refuses its statements."""
    return datetime.now(ZoneInfo(get_settings().business_timezone)).date()


def last_month(today: date) -> str:
    return f"{today.replace(day=1) - timedelta(days=1):%Y-%m}"


async def seed_statement_history(db: Database, today: date) -> str:
    period = last_month(today)
    start, _end = period_bounds(period)
    async with db.session() as session, session.begin():
        opened = datetime.combine(start - timedelta(days=20), datetime.min.time(), tzinfo=UTC)
        await session.execute(
            text("UPDATE ledger_accounts SET created_at = LEAST(created_at, :at) WHERE id = :id"),
            {"at": opened, "id": ACCOUNT},
        )
        cash = (
            await session.execute(
                text("SELECT id FROM ledger_accounts WHERE code = :c AND currency = 'USD'"), {"c": GL_CASH}
            )
        ).scalar_one()
        for n, (day, amount, description, entry_type) in enumerate(
            [
                (start - timedelta(days=10), Decimal("1500.00"), "Opening deposit (demo)", "cash_deposit"),
                (start + timedelta(days=4), Decimal("320.00"), "Paycheck savings (demo)", "cash_deposit"),
                (start + timedelta(days=17), Decimal("-85.40"), "Cash withdrawal (demo)", "cash_withdrawal"),
            ]
        ):
            await ledger.post_entry(
                session,
                idempotency_key=f"demo:history:{period}:{n}",
                entry_type=entry_type,
                description=description,
                effective_date=day,
                legs=[ledger.Leg(cash, amount), ledger.Leg(ACCOUNT, -amount)],
            )
        # Alice's savings earns on the demo product (4.5 %, actual/365).
        await session.execute(
            text(
                """INSERT INTO savings_products (id, name, annual_rate, tiers, day_count, active)
               VALUES (:id, 'Demo savings 4.5%', 0.045, NULL, 'actual/365', true) ON CONFLICT DO NOTHING"""
            ),
            {"id": PRODUCT},
        )
        await session.execute(
            text("INSERT INTO savings_accounts (account_id, product_id) VALUES (:a, :p) ON CONFLICT DO NOTHING"),
            {"a": ACCOUNT, "p": PRODUCT},
        )
    return period


async def accrue_and_post(period: str) -> None:
    """Each day of the month accrued, then the month posted, by the same workflows the Schedules start."""
    settings = get_settings()
    client = await connect(settings)
    start, end = period_bounds(period)
    runs: list[tuple[Any, Any, str]] = [
        (
            DailyAccrualWorkflow.run,
            AccrualRunInput(day=start + timedelta(days=n)),
            f"demo-accrual-{start + timedelta(days=n)}",
        )
        for n in range((end - start).days + 1)
    ]
    runs.append((MonthEndPostingWorkflow.run, MonthEndInput(period=period), f"demo-month-end-{period}"))
    for run, arg, workflow_id in runs:
        try:  # a second `make run` finds each one done
            await client.execute_workflow(
                run,
                arg,
                id=workflow_id,
                task_queue=queue_for(settings, run),
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            pass


async def seed_demo_statements(database_url: str, api_url: str) -> str:
    """The history, then last month's statements run as the demo operator; returns the PDF's path."""
    db = Database(database_url, pool_size=1)  # its own: an engine's connections belong to one event loop
    try:
        period = await seed_statement_history(db, local_today())
    finally:
        await db.close()
    await accrue_and_post(period)
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        # A statement run is bank-wide: bank operations starts it, never one organization's operator.
        login = await http.post(
            "/api/v1/auth/login", data={"username": "bankops@backoffice.example", "password": "demo-bankops-pass"}
        )
        login.raise_for_status()
        response = await http.post(
            "/api/v1/statements/runs",
            json={"period": period},
            headers={"Authorization": f"Bearer {login.json()['access_token']}"},
        )
        response.raise_for_status()
    return f"/api/v1/accounts/{ACCOUNT}/statements/{period}.pdf"
