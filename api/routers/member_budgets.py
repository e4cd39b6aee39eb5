"""Members' budgets (domain/member_budgets.py): a member's spending limit per category with its progress in the
current period, and its history. The organization's budgets of the variance report are reports/budgets."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.deps import CurrentUser, SessionDep, SettingsDep, allowed
from api.pagination import Page, PageDep
from core.access import Action, Entity
from core.business_time import business_today
from domain import member_budgets
from domain.member_budgets import AnalyticsOut, MemberBudgetIn, MemberBudgetOut, MemberBudgetUpdate
from models.users import User

router = APIRouter(prefix="/member-budgets", tags=["member budgets"])

Reader = Annotated[User, Depends(allowed(Entity.member_budget, Action.read))]
NOT_YOURS: dict[int | str, dict[str, Any]] = {
    403: {"description": "a budget shared with you read-only"},
    404: {"description": "no budget you can see"},
}


@router.post(
    "",
    response_model=MemberBudgetOut,
    status_code=201,
    responses={422: {"description": "an unknown category, or a superuser naming no member"}},
    summary="Set a monthly or yearly spending limit for a category (a member for themself)",
)
async def create_budget(
    body: MemberBudgetIn, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> MemberBudgetOut:
    return await member_budgets.create(session, user, body, business_today(settings))


@router.get("", response_model=Page[MemberBudgetOut], summary="Budgets you can see (yours and shared), with progress")
async def list_budgets(
    session: SessionDep,
    user: Reader,
    page: PageDep,
    settings: SettingsDep,
    category_key: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z][a-z0-9_]{0,39}$")] = None,
    include_ended: bool = False,
) -> Page[MemberBudgetOut]:
    return await member_budgets.listing(session, user, page, business_today(settings), category_key, include_ended)


@router.get(
    "/{budget_id}",
    response_model=MemberBudgetOut,
    responses={404: NOT_YOURS[404]},
    summary="A budget and its progress this period",
)
async def get_budget(budget_id: uuid.UUID, session: SessionDep, user: Reader, settings: SettingsDep) -> MemberBudgetOut:
    return await member_budgets.view(session, user, budget_id, business_today(settings))


@router.get(
    "/{budget_id}/analytics",
    response_model=AnalyticsOut,
    responses={404: NOT_YOURS[404]},
    summary="Budget against actual spending month by month, and the trend",
)
async def budget_analytics(
    budget_id: uuid.UUID,
    session: SessionDep,
    user: Reader,
    settings: SettingsDep,
    months: Annotated[int, Query(ge=1, le=36, description="calendar months, this one included")] = 6,
) -> AnalyticsOut:
    return await member_budgets.analytics(session, user, budget_id, months, business_today(settings))


@router.put(
    "/{budget_id}",
    response_model=MemberBudgetOut,
    responses={**NOT_YOURS, 409: {"description": "the budget has ended"}},
    summary="Change a budget's amount, category, period, rollover or start",
)
async def update_budget(
    budget_id: uuid.UUID, body: MemberBudgetUpdate, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> MemberBudgetOut:
    return await member_budgets.update(session, user, budget_id, body, business_today(settings))


@router.delete(
    "/{budget_id}",
    response_model=MemberBudgetOut,
    responses={**NOT_YOURS, 409: {"description": "already ended"}},
    summary="End a budget (kept for its history)",
)
async def end_budget(
    budget_id: uuid.UUID, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> MemberBudgetOut:
    return await member_budgets.end(session, user, budget_id, business_today(settings))
