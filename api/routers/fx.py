"""Currency (README: Currency): conversion at the cached exchange rates (domain/fx.py), a member's base currency,
and their money summary across accounts and currencies (domain/insights.money_summary)."""

import re
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from api.deps import CurrentUser, ReadSessionDep, SessionDep, SettingsDep, TemporalDep, allowed
from api.errors import AppError
from core import audit
from core.access import Action, Entity
from domain import fx, insights
from models.users import User

router = APIRouter(tags=["currency"])

InsightReader = Annotated[User, Depends(allowed(Entity.insight, Action.read))]
AMOUNT_RE = re.compile(r"^[0-9]{1,15}(\.[0-9]{1,3})?$", re.ASCII)


def _amount(value: Any) -> Decimal:
    if not isinstance(value, str) or not AMOUNT_RE.fullmatch(value):
        raise ValueError("must be an amount: ASCII digits with at most 3 decimals, no sign, spaces or exponent")
    return Decimal(value)


Amount = Annotated[
    Decimal,
    BeforeValidator(_amount),
    WithJsonSchema({"type": "string", "pattern": AMOUNT_RE.pattern, "examples": ["10.00"]}),
]


class ConversionOut(BaseModel):
    amount: Decimal
    from_: str = Field(alias="from")
    to: str
    converted: Decimal = Field(description="rounded once to the target currency's minor units, ROUND_HALF_EVEN")
    rate: Decimal = Field(description="units of `to` per one `from` (a cross rate through the pivot currency)")
    as_of: date | None = Field(description="the provider's update date of the rate (None: same currency)")
    source: str
    fetched_at: datetime | None

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


@router.get("/fx/convert", response_model=ConversionOut, summary="Convert an amount between two currencies")
async def convert(
    session: ReadSessionDep,
    client: TemporalDep,
    settings: SettingsDep,
    user: CurrentUser,
    amount: Annotated[Amount, Query(description="at most the source currency's minor units", examples=["10.00"])],
    from_: Annotated[fx.CurrencyCode, Query(alias="from")],
    to: Annotated[fx.CurrencyCode, Query()],
):
    places = -amount.as_tuple().exponent  # type: ignore[operator]
    if places > fx.minor_units(from_):
        raise AppError(
            422,
            "validation_error",
            f"{from_} has {fx.minor_units(from_)} decimal places; {amount} has {places}",
            [{"field": "amount", "message": f"at most {fx.minor_units(from_)} decimal places for {from_}"}],
        )
    table = await fx.Converter(session, client, settings).rates_for({from_}, to)
    result = fx.convert(table, amount, from_, to)
    return ConversionOut(
        amount=amount,
        from_=from_,
        to=to,
        converted=result.converted,
        rate=result.rate,
        as_of=result.as_of,
        source=result.source,
        fetched_at=table.fetched_at if from_ != to else None,
    )


class BaseCurrencyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_currency: fx.CurrencyCode


class BaseCurrencyOut(BaseModel):
    base_currency: str


@router.get("/me/base-currency", response_model=BaseCurrencyOut, summary="My base currency")
async def get_base_currency(user: CurrentUser):
    return BaseCurrencyOut(base_currency=user.base_currency)


@router.put(
    "/me/base-currency",
    response_model=BaseCurrencyOut,
    summary="Set my base currency (my money summary and insights are converted to it)",
)
async def set_base_currency(body: BaseCurrencyIn, session: SessionDep, user: CurrentUser):
    me = await session.get(User, user.id)
    assert me is not None  # the signed-in user
    before = me.base_currency
    me.base_currency = body.base_currency
    if before != body.base_currency:
        await audit.record(
            session,
            actor=user.email,
            actor_id=user.id,
            action="user.base_currency",
            entity_type="user",
            entity_id=me.id,
            before={"base_currency": before},
            after={"base_currency": body.base_currency},
        )
    await session.commit()
    return BaseCurrencyOut(base_currency=me.base_currency)


@router.get("/money/summary", summary="A member's accounts, each in its currency and converted to the base currency")
async def money_summary(
    session: ReadSessionDep,
    client: TemporalDep,
    settings: SettingsDep,
    user: InsightReader,
    member_id: Annotated[
        uuid.UUID | None, Query(description="another member (staff, or a member they share with)")
    ] = None,
    currency: Annotated[fx.CurrencyCode | None, Query(description="default: the member's base currency")] = None,
) -> dict[str, Any]:
    member = await insights.visible_member(session, user, member_id)
    converter = fx.Converter(session, client, settings)
    return await insights.money_summary(session, converter, user, member, currency or member.base_currency)
