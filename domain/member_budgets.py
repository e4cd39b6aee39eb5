"""Members' budgets (PRODUCT.md §4.9): a spending limit per category, monthly or yearly, with its progress in the
current period and its history month by month. Access is the one money policy (core/access.money_rows over
`budgets`): a member's own, and another member's through a share (read, or edit to change it); an org admin or
operator reads their organization's members' budgets and changes none. Threshold alerts: domain/money_alerts.py."""

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field
from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import AppError
from api.fields import BusinessDate, Money
from api.pagination import Page, PageParams, paginate
from core import access
from core.access import Action, Entity
from domain.budget_periods import CENT, ZERO, Progress, add_months, month_start, progress, spent_by_month
from models.base import utcnow
from models.member_budgets import BudgetPeriod, MemberBudget
from models.money import Category, ShareWhat
from models.users import Role, User

CategoryKey = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_]+$", examples=["groceries"])]
Currency = Field(default="USD", pattern=r"^[A-Z]{3}$", description="the member's base currency")


class MemberBudgetIn(BaseModel):
    category_key: CategoryKey
    period: BudgetPeriod = BudgetPeriod.monthly
    amount: Money
    currency: str = Currency
    rollover: bool = Field(default=False, description="add the previous period's unused amount to this one's")
    starts_on: BusinessDate | None = Field(default=None, description="default: the first day of the current period")
    user_id: uuid.UUID | None = Field(default=None, description="a superuser names the member; a member omits it")


class MemberBudgetUpdate(BaseModel):
    category_key: CategoryKey | None = None
    period: BudgetPeriod | None = None
    amount: Money | None = None
    rollover: bool | None = None
    starts_on: BusinessDate | None = None


class ProgressOut(BaseModel):
    period_start: date
    period_end: date
    carried_over: Decimal
    limit: Decimal
    spent: Decimal
    remaining: Decimal
    percentage: Decimal


class MemberBudgetOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    category_key: str
    period: str
    amount: Decimal
    currency: str
    rollover: bool
    starts_on: date
    created_at: datetime
    updated_at: datetime | None
    ended_at: datetime | None
    progress: ProgressOut


class MonthOut(BaseModel):
    month: date
    budgeted: Decimal | None = Field(description="null before the budget started")
    actual: Decimal
    difference: Decimal | None = Field(description="budgeted - actual: negative when overspent")


class TrendOut(BaseModel):
    average: Decimal
    slope_per_month: Decimal = Field(description="least-squares change of the actual spending per month")
    direction: Literal["up", "down", "flat"]


class AnalyticsOut(BaseModel):
    budget_id: uuid.UUID
    category_key: str
    months: list[MonthOut]
    trend: TrendOut


def out(budget: MemberBudget, current: Progress) -> MemberBudgetOut:
    return MemberBudgetOut(**budget.model_dump(exclude={"org_id"}), progress=ProgressOut(**current.__dict__))


async def check_category(session: AsyncSession, owner_id: uuid.UUID, key: str) -> None:
    found = (
        await session.execute(
            select(col(Category.id)).where(
                col(Category.key) == key, or_(col(Category.user_id).is_(None), col(Category.user_id) == owner_id)
            )
        )
    ).first()
    if found is None:
        raise AppError(422, "unknown_category", f"no category {key!r}", {"category_key": key})


async def owner_for_create(session: AsyncSession, user: User, requested: uuid.UUID | None) -> User:
    """A member budgets for themself; a superuser for the member they name. Staff change no member's money."""
    access.gate(user, Entity.member_budget, Action.create)
    if user.role == Role.member:
        if requested not in (None, user.id):
            raise access.forbid(user, Entity.member_budget, None, Action.create, "a member sets only their own budgets")
        return user
    if requested is None:
        raise AppError(422, "user_required", "name the member (user_id) the budget is for")
    owner = await session.get(User, requested)
    if owner is None or owner.role != Role.member or owner.org_id is None:
        raise access.not_visible(user, Entity.member, requested, exists=owner is not None)
    return owner


async def create(session: AsyncSession, user: User, body: MemberBudgetIn, today: date) -> MemberBudgetOut:
    owner = await owner_for_create(session, user, body.user_id)
    await check_category(session, owner.id, body.category_key)
    assert owner.org_id is not None
    budget = MemberBudget(
        user_id=owner.id,
        org_id=owner.org_id,
        category_key=body.category_key,
        period=body.period,
        amount=body.amount,
        currency=body.currency,
        rollover=body.rollover,
        starts_on=body.starts_on
        or (month_start(today) if body.period == BudgetPeriod.monthly else today.replace(month=1, day=1)),
    )
    session.add(budget)
    await session.commit()
    await session.refresh(budget)
    return out(budget, await progress(session, budget, today))


def _readable(user: User, edit: bool = False):
    return access.money_rows(
        user,
        ShareWhat.budgets,
        col(MemberBudget.user_id),
        col(MemberBudget.org_id),
        category_col=col(MemberBudget.category_key),
        edit=edit,
    )


async def visible(session: AsyncSession, user: User, budget_id: uuid.UUID, edit: bool = False) -> MemberBudget:
    """The budget if `user` may read it (404 otherwise, as for one that does not exist); with `edit`, also change
    it (403 for a budget they only read)."""
    budget = await session.get(MemberBudget, budget_id, with_for_update=edit or None)
    if budget is None:
        raise access.not_visible(user, Entity.member_budget, budget_id, exists=False)
    seen = (
        await session.execute(select(col(MemberBudget.id)).where(col(MemberBudget.id) == budget_id, _readable(user)))
    ).first()
    if seen is None:
        raise access.not_visible(user, Entity.member_budget, budget_id)
    if edit:
        may = (
            await session.execute(
                select(col(MemberBudget.id)).where(col(MemberBudget.id) == budget_id, _readable(user, edit=True))
            )
        ).first()
        if may is None:
            raise access.forbid(
                user, Entity.member_budget, budget_id, Action.update, "you may read this budget but not change it"
            )
    return budget


async def view(session: AsyncSession, user: User, budget_id: uuid.UUID, today: date) -> MemberBudgetOut:
    budget = await visible(session, user, budget_id)
    return out(budget, await progress(session, budget, today))


async def listing(
    session: AsyncSession,
    user: User,
    page: PageParams,
    today: date,
    category_key: str | None = None,
    include_ended: bool = False,
) -> Page[MemberBudgetOut]:
    statement = select(MemberBudget).where(_readable(user))
    if category_key is not None:
        statement = statement.where(col(MemberBudget.category_key) == category_key)
    if not include_ended:
        statement = statement.where(col(MemberBudget.ended_at).is_(None))
    rows, total = await paginate(session, statement, page, [col(MemberBudget.created_at).desc(), col(MemberBudget.id)])
    items = [out(budget, await progress(session, budget, today)) for budget in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


async def update(
    session: AsyncSession, user: User, budget_id: uuid.UUID, body: MemberBudgetUpdate, today: date
) -> MemberBudgetOut:
    budget = await visible(session, user, budget_id, edit=True)
    if budget.ended_at is not None:
        raise AppError(409, "budget_ended", "this budget has ended: create a new one")
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "category_key" in changes:
        await check_category(session, budget.user_id, changes["category_key"])
    for name, value in changes.items():
        setattr(budget, name, value)
    budget.updated_at = utcnow()
    session.add(budget)
    await session.commit()
    await session.refresh(budget)
    return out(budget, await progress(session, budget, today))


async def end(session: AsyncSession, user: User, budget_id: uuid.UUID, today: date) -> MemberBudgetOut:
    """Ends the budget (kept, with its alerts, for the history); ending it again is a 409."""
    budget = await visible(session, user, budget_id, edit=True)
    if budget.ended_at is not None:
        raise AppError(409, "budget_ended", "this budget has already ended")
    budget.ended_at = budget.updated_at = utcnow()
    session.add(budget)
    await session.commit()
    await session.refresh(budget)
    return out(budget, await progress(session, budget, today))


def trend(actuals: list[Decimal]) -> TrendOut:
    """Least-squares slope of the monthly actuals; 'flat' when it moves less than 5 % of the average a month."""
    n = len(actuals)
    average = (sum(actuals, ZERO) / n).quantize(CENT)
    mean_x = Decimal(n - 1) / 2
    spread = sum(((Decimal(i) - mean_x) ** 2 for i in range(n)), Decimal(0))
    slope = (
        sum(((Decimal(i) - mean_x) * (a - average) for i, a in enumerate(actuals)), Decimal(0)) / spread
        if spread
        else Decimal(0)
    ).quantize(CENT)
    direction: Literal["up", "down", "flat"] = (
        "flat" if abs(slope) <= average * Decimal("0.05") else "up" if slope > 0 else "down"
    )
    return TrendOut(average=average, slope_per_month=slope, direction=direction)


async def analytics(session: AsyncSession, user: User, budget_id: uuid.UUID, months: int, today: date) -> AnalyticsOut:
    """Budget against actual for the last `months` calendar months (this one included), and the trend. A yearly
    budget counts a twelfth of its amount a month."""
    budget = await visible(session, user, budget_id)
    first = add_months(month_start(today), -(months - 1))
    actual = await spent_by_month(
        session,
        budget.user_id,
        budget.category_key,
        budget.currency,
        first,
        add_months(month_start(today), 1) - timedelta(days=1),
    )
    monthly = budget.amount if budget.period == BudgetPeriod.monthly else (budget.amount / 12).quantize(CENT)
    started = month_start(budget.starts_on)
    rows = []
    for i in range(months):
        month = add_months(first, i)
        spent = actual.get(month, ZERO)
        budgeted = monthly if month >= started else None
        rows.append(
            MonthOut(
                month=month,
                budgeted=budgeted,
                actual=spent,
                difference=None if budgeted is None else budgeted - spent,
            )
        )
    return AnalyticsOut(
        budget_id=budget.id,
        category_key=budget.category_key,
        months=rows,
        trend=trend([row.actual for row in rows]),
    )
