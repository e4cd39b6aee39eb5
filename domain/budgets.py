"""Budgets per organization, report line and month (PRODUCT.md §4.8), read by the budget variance report.

Setting one is a PUT of (organization, line, month): the first writes the row, a later one with another amount
replaces it, the same amount again changes nothing; each change writes an audit row with the amount before and
after. Concurrent PUTs of one key serialize on the row (it is inserted if missing, then locked). Org admins set
their organization's budgets, the superuser any organization's (core/access.py GATES)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import AppError
from core import audit
from finance.reports import INTER_ORG, MEMBER_LINES
from models.base import utcnow
from models.budgets import Budget
from models.users import User

_KNOWN_GL = text("SELECT 1 FROM ledger_accounts WHERE kind = 'gl' AND code = :code LIMIT 1")
CONTROL_LINES = frozenset(key for key, _, _ in MEMBER_LINES.values()) | {INTER_ORG}


def month(period: str) -> date:
    """The first day of a `YYYY-MM` month (the API checks the pattern)."""
    year, number = period.split("-")
    return date(int(year), int(number), 1)


async def check_line(session: AsyncSession, line_key: str) -> None:
    """A budget is for a line the reports show: a GL account's code or a member control line."""
    if line_key in CONTROL_LINES or (await session.execute(_KNOWN_GL, {"code": line_key})).first():
        return
    raise AppError(
        422,
        "unknown_line",
        "no GL account or report line has this code",
        {"line_key": line_key, "control_lines": sorted(CONTROL_LINES)},
    )


async def put(
    session: AsyncSession, actor: User, org_id: uuid.UUID, line_key: str, period: date, amount: Decimal
) -> tuple[Budget, bool]:
    """The budget set to `amount`; (the row, changed). The caller commits."""
    await check_line(session, line_key)
    inserted = await session.execute(
        text("""INSERT INTO budgets (id, org_id, line_key, period, amount, updated_by)
                VALUES (:id, :org, :line, :period, :amount, :by)
                ON CONFLICT (org_id, line_key, period) DO NOTHING RETURNING id"""),
        {"id": uuid.uuid4(), "org": org_id, "line": line_key, "period": period, "amount": amount, "by": actor.id},
    )
    created = inserted.first() is not None
    found = select(Budget).where(Budget.org_id == org_id, Budget.line_key == line_key, Budget.period == period)
    budget = (await session.exec(found.with_for_update().execution_options(populate_existing=True))).one()
    before = None if created else {"amount": str(budget.amount)}
    if not created and budget.amount == amount:
        return budget, False
    if not created:
        budget.amount, budget.updated_by, budget.updated_at = amount, actor.id, utcnow()
        session.add(budget)
    await audit.record(
        session,
        actor=actor.email,
        actor_id=actor.id,
        action="budget.created" if created else "budget.changed",
        entity_type="budget",
        entity_id=budget.id,
        before=before,
        after={"org_id": str(org_id), "line_key": line_key, "period": f"{period:%Y-%m}", "amount": str(amount)},
    )
    return budget, True


async def current(session: AsyncSession, org_id: uuid.UUID, line_key: str, period: date) -> Budget | None:
    found = select(Budget).where(Budget.org_id == org_id, Budget.line_key == line_key, Budget.period == period)
    return (await session.exec(found)).first()


def visible(org_id: uuid.UUID | None, line_key: str | None, first: date | None, last: date | None):
    """The budgets of `org_id` (None: every organization's), filtered."""
    statement = select(Budget)
    if org_id is not None:
        statement = statement.where(Budget.org_id == org_id)
    if line_key is not None:
        statement = statement.where(Budget.line_key == line_key)
    if first is not None:
        statement = statement.where(col(Budget.period) >= first)
    if last is not None:
        statement = statement.where(col(Budget.period) <= last)
    return statement
