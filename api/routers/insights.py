"""A member's insights (README: Insights; domain/insights.py): each for the caller by default, or for `member_id`
(staff of the member's organization, a superuser, or a member the member shares transactions with), converted to
the member's base currency unless `currency` says otherwise. Periods default to the last 12 months (this one
included)."""

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.deps import ReadSessionDep, SettingsDep, TemporalDep, allowed
from api.errors import AppError
from api.fields import BusinessDate
from core.access import Action, Entity
from core.business_time import business_today
from domain import fx, insights
from models.users import User

router = APIRouter(prefix="/insights", tags=["insights"])

InsightReader = Annotated[User, Depends(allowed(Entity.insight, Action.read))]
MAX_SPAN_DAYS = 366 * 10


@dataclass
class Scope:
    member: User
    currency: str
    converter: fx.Converter


async def scope(
    session: ReadSessionDep,
    client: TemporalDep,
    settings: SettingsDep,
    user: InsightReader,
    member_id: Annotated[uuid.UUID | None, Query(description="default: me")] = None,
    currency: Annotated[fx.CurrencyCode | None, Query(description="default: the member's base currency")] = None,
) -> Scope:
    member = await insights.visible_member(session, user, member_id)
    return Scope(member, currency or member.base_currency, fx.Converter(session, client, settings))


ScopeDep = Annotated[Scope, Depends(scope)]


@dataclass
class Period:
    start: date
    end: date


def period(
    settings: SettingsDep,
    from_: Annotated[BusinessDate | None, Query(alias="from", description="default: 11 months before this one")] = None,
    to: Annotated[BusinessDate | None, Query(description="default: today")] = None,
) -> Period:
    end = to or business_today(settings)
    start = from_ or insights.month_start_back(end, 11)
    if start > end:
        raise AppError(422, "validation_error", "`from` is after `to`", [{"field": "from", "message": "after `to`"}])
    if (end - start).days > MAX_SPAN_DAYS:
        raise AppError(
            422, "validation_error", "the period is longer than 10 years", [{"field": "from", "message": "too early"}]
        )
    return Period(start, end)


PeriodDep = Annotated[Period, Depends(period)]


@router.get("/cash-flow", summary="Income and expenses per month (transfers left out)")
async def cash_flow(session: ReadSessionDep, user: InsightReader, s: ScopeDep, p: PeriodDep) -> dict[str, Any]:
    return await insights.cash_flow(session, s.converter, user, s.member, s.currency, p.start, p.end)


@router.get("/top-merchants", summary="Where the money goes: merchants by amount spent")
async def top_merchants(
    session: ReadSessionDep,
    user: InsightReader,
    s: ScopeDep,
    p: PeriodDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    return await insights.top_merchants(session, s.converter, user, s.member, s.currency, p.start, p.end, limit)


@router.get("/categories", summary="Income and expenses per category, with each one's share of the expenses")
async def categories(session: ReadSessionDep, user: InsightReader, s: ScopeDep, p: PeriodDep) -> dict[str, Any]:
    return await insights.categories(session, s.converter, user, s.member, s.currency, p.start, p.end)


@router.get("/burn-rate", summary="Average monthly expenses over the last complete months, and their trend")
async def burn_rate(
    session: ReadSessionDep,
    settings: SettingsDep,
    user: InsightReader,
    s: ScopeDep,
    months: Annotated[int, Query(ge=1, le=36, description="how many complete months")] = 6,
    as_of: Annotated[
        BusinessDate | None, Query(description="the months before this date's month; default today")
    ] = None,
) -> dict[str, Any]:
    return await insights.burn_rate(
        session, s.converter, user, s.member, s.currency, as_of or business_today(settings), months
    )


@router.get("/net-worth", summary="Month-end net worth across the member's accounts, at the latest rates")
async def net_worth(session: ReadSessionDep, user: InsightReader, s: ScopeDep, p: PeriodDep) -> dict[str, Any]:
    return await insights.net_worth(session, s.converter, user, s.member, s.currency, p.start, p.end)
