"""The calendar periods of a member's budget and what was spent in them: pure date arithmetic, and one query over
the `member_transactions` view shared by the API (progress, analytics) and the alert evaluation."""

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.member_budgets import BudgetPeriod, MemberBudget
from models.money import MEMBER_TRANSACTIONS as T

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_of(period: str, day: date) -> tuple[date, date]:
    """(first day, last day) of the monthly or yearly period containing `day`."""
    if period == BudgetPeriod.yearly:
        return date(day.year, 1, 1), date(day.year, 12, 31)
    first = month_start(day)
    return first, add_months(first, 1) - timedelta(days=1)


def previous_period(period: str, start: date) -> tuple[date, date]:
    return period_of(period, start - timedelta(days=1))


async def spent_between(
    session: AsyncSession, user_id: uuid.UUID, category_key: str, currency: str, first: date, last: date
) -> Decimal:
    """Expenses of the category in [first, last]: minus the sum of the money out (amount < 0)."""
    total = (
        await session.execute(
            select(func.coalesce(-func.sum(T.c.amount), 0)).where(
                T.c.user_id == user_id,
                T.c.category_key == category_key,
                T.c.currency == currency,
                T.c.amount < 0,
                T.c.posted_on.between(first, last),
            )
        )
    ).scalar_one()
    return Decimal(total).quantize(CENT)


async def spent_by_month(
    session: AsyncSession, user_id: uuid.UUID, category_key: str, currency: str, first: date, last: date
) -> dict[date, Decimal]:
    """Expenses of the category per month (keyed by the month's first day) in [first, last]: one grouped query."""
    month = func.date_trunc("month", T.c.posted_on)
    rows = await session.execute(
        select(month, func.sum(case((T.c.amount < 0, -T.c.amount), else_=0)))
        .where(
            and_(
                T.c.user_id == user_id,
                T.c.category_key == category_key,
                T.c.currency == currency,
                T.c.amount < 0,
                T.c.posted_on.between(first, last),
            )
        )
        .group_by(month)
    )
    return {when.date(): Decimal(total).quantize(CENT) for when, total in rows.all()}


@dataclass
class Progress:
    period_start: date
    period_end: date
    carried_over: Decimal
    limit: Decimal  # the budget's amount plus what rolled over
    spent: Decimal
    remaining: Decimal
    percentage: Decimal  # of the limit, 2 decimals; may exceed 100


async def progress(session: AsyncSession, budget: MemberBudget, today: date) -> Progress:
    """The budget's current period: what was spent of its limit. With rollover, the previous period's unused amount
    (never a negative carry: an overspent month does not shrink the next) is added, once the budget existed then."""
    first, last = period_of(budget.period, today)
    carried = ZERO
    if budget.rollover:
        prev_first, prev_last = previous_period(budget.period, first)
        if prev_first >= period_of(budget.period, budget.starts_on)[0]:
            prev_spent = await spent_between(
                session, budget.user_id, budget.category_key, budget.currency, prev_first, prev_last
            )
            carried = max(ZERO, budget.amount - prev_spent)
    spent = await spent_between(session, budget.user_id, budget.category_key, budget.currency, first, last)
    limit = budget.amount + carried
    return Progress(
        period_start=first,
        period_end=last,
        carried_over=carried,
        limit=limit,
        spent=spent,
        remaining=limit - spent,
        percentage=(spent * 100 / limit).quantize(CENT),
    )
