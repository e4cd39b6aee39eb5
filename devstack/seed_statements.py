"""Demo statements for `make run`: Alice's savings account gets a month of history (opened the month before
last, a deposit, a withdrawal and its interest last month), then last month's statements are written through the
API, so a statement PDF is there to open at once. Idempotent: fixed keys per month, and a statement is written once."""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import text

from core import ledger
from core.config import get_settings
from core.db import Database
from devstack.seed import demo_id
from models.ledger import GL_CASH, GL_INTEREST_EXPENSE
from models.statements import period_bounds

ACCOUNT = demo_id("account:alice-savings")


def local_today() -> date:
    """Today where the schedules run: a month is over there, or the API refuses its statements."""
    return datetime.now(ZoneInfo(get_settings().schedule_timezone)).date()


def last_month(today: date) -> str:
    return f"{today.replace(day=1) - timedelta(days=1):%Y-%m}"


async def seed_statement_history(db: Database, today: date) -> str:
    period = last_month(today)
    start, end = period_bounds(period)
    async with db.session() as session, session.begin():
        opened = datetime.combine(start - timedelta(days=20), datetime.min.time(), tzinfo=timezone.utc)
        await session.execute(text("UPDATE ledger_accounts SET created_at = LEAST(created_at, :at) WHERE id = :id"),
                              {"at": opened, "id": ACCOUNT})
        codes = (await session.execute(text("SELECT code, id FROM ledger_accounts WHERE code = ANY(:c)"),
                                       {"c": [GL_CASH, GL_INTEREST_EXPENSE]})).all()
        gl = {code: account_id for code, account_id in codes}
        for n, (day, amount, description, entry_type, code) in enumerate([
                (start - timedelta(days=10), Decimal("1500.00"), "Opening deposit (demo)", "cash_deposit", GL_CASH),
                (start + timedelta(days=4), Decimal("320.00"), "Paycheck savings (demo)", "cash_deposit", GL_CASH),
                (start + timedelta(days=17), Decimal("-85.40"), "Cash withdrawal (demo)", "cash_withdrawal", GL_CASH),
                (end, Decimal("2.37"), f"Interest for {period}", "interest_posting", GL_INTEREST_EXPENSE)]):
            await ledger.post_entry(session, idempotency_key=f"demo:history:{period}:{n}", entry_type=entry_type,
                                    description=description, effective_date=day,
                                    legs=[ledger.Leg(gl[code], amount), ledger.Leg(ACCOUNT, -amount)])
    return period


async def seed_demo_statements(database_url: str, api_url: str) -> str:
    """The history, then last month's statements run as the demo operator; returns the PDF's path."""
    db = Database(database_url, pool_size=1)  # its own: an engine's connections belong to one event loop
    try:
        period = await seed_statement_history(db, local_today())
    finally:
        await db.close()
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        login = await http.post("/api/v1/auth/login", data={"username": "operator@riverside.example",
                                                             "password": "demo-operator-pass"})
        login.raise_for_status()
        response = await http.post("/api/v1/statements/runs", json={"period": period},
                                   headers={"Authorization": f"Bearer {login.json()['access_token']}"})
        response.raise_for_status()
    return f"/api/v1/accounts/{ACCOUNT}/statements/{period}.pdf"
