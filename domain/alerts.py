"""Members' alert subscriptions and the alerts raised for them (PRODUCT.md §4.9). Both are the member's own, like
their notifications: another user's is a 404 whatever their role. The evaluation that raises alerts runs in a
workflow when the member's money moves (domain/money_events.py, activities/money_events.py)."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import AppError
from api.fields import Money
from api.pagination import Page, PageParams, paginate
from core import access
from core.access import Action, Entity
from models.base import utcnow
from models.member_budgets import AlertSubscription, AlertType, Channel, MemberAlert
from models.users import User


class AlertParams(BaseModel):
    """What makes the alert: low_balance needs `below` (an amount) or `below_average_percent` (of the account's
    90-day average balance); large_transaction needs `above`; bill_due takes `within_days` (default 3)."""

    below: Money | None = None
    below_average_percent: int | None = Field(default=None, ge=1, le=100, examples=[20])
    above: Money | None = None
    within_days: int | None = Field(default=None, ge=0, le=60)

    model_config = {"extra": "forbid"}


REQUIRED: dict[AlertType, tuple[str, ...]] = {
    AlertType.low_balance: ("below", "below_average_percent"),  # one of them
    AlertType.large_transaction: ("above",),
}
ALLOWED: dict[AlertType, set[str]] = {
    AlertType.low_balance: {"below", "below_average_percent"},
    AlertType.large_transaction: {"above"},
    AlertType.bill_due: {"within_days"},
    AlertType.budget_threshold: set(),
    AlertType.payment_returned: set(),
}


class SubscriptionIn(BaseModel):
    type: AlertType
    channels: list[Channel] = Field(default=[Channel.in_app], min_length=1, max_length=3)
    params: AlertParams = Field(default_factory=AlertParams)
    active: bool = True

    @model_validator(mode="after")
    def fits_type(self) -> "SubscriptionIn":
        check_params(self.type, self.params)
        return self


class SubscriptionUpdate(BaseModel):
    channels: list[Channel] | None = Field(default=None, min_length=1, max_length=3)
    params: AlertParams | None = None
    active: bool | None = None


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    type: str
    channels: list[str]
    params: dict[str, Any]
    active: bool
    created_at: datetime
    updated_at: datetime | None


class AlertOut(BaseModel):
    id: uuid.UUID
    type: str
    title: str
    body: str
    entity_type: str | None
    entity_id: str | None
    subscription_id: uuid.UUID | None
    created_at: datetime
    read_at: datetime | None
    dismissed_at: datetime | None


def check_params(kind: AlertType, params: AlertParams) -> None:
    given = {name for name, value in params.model_dump().items() if value is not None}
    extra = given - ALLOWED[kind]
    if extra:
        raise ValueError(f"{kind} takes no {', '.join(sorted(extra))}")
    needed = REQUIRED.get(kind)
    if needed and len(given & set(needed)) != 1:
        raise ValueError(f"{kind} needs exactly one of: {', '.join(needed)}")


def stored(params: AlertParams) -> dict[str, Any]:
    """JSON for the row: amounts as strings (exact), nothing unset."""
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in params.model_dump(exclude_none=True).items()}


def sub_out(row: AlertSubscription) -> SubscriptionOut:
    return SubscriptionOut(**row.model_dump(exclude={"user_id", "org_id"}))


async def create_subscription(session: AsyncSession, user: User, body: SubscriptionIn) -> SubscriptionOut:
    access.gate(user, Entity.alert_subscription, Action.create, "alerts are on a member's own money")
    assert user.org_id is not None  # every member belongs to an organization
    row = AlertSubscription(
        user_id=user.id,
        org_id=user.org_id,
        type=body.type,
        channels=sorted(set(body.channels)),
        params=stored(body.params),
        active=body.active,
    )
    session.add(row)
    await session.commit()
    await session.refresh(row)
    return sub_out(row)


async def own_subscription(session: AsyncSession, user: User, sub_id: uuid.UUID) -> AlertSubscription:
    row = await session.get(AlertSubscription, sub_id)
    if row is None or row.user_id != user.id:
        raise access.not_visible(user, Entity.alert_subscription, sub_id, exists=row is not None)
    return row


async def list_subscriptions(
    session: AsyncSession, user: User, page: PageParams, kind: AlertType | None
) -> Page[SubscriptionOut]:
    statement = select(AlertSubscription).where(col(AlertSubscription.user_id) == user.id)
    if kind is not None:
        statement = statement.where(col(AlertSubscription.type) == kind)
    rows, total = await paginate(
        session, statement, page, [col(AlertSubscription.created_at).desc(), col(AlertSubscription.id)]
    )
    return Page(items=[sub_out(r) for r in rows], total=total, limit=page.limit, offset=page.offset)


async def update_subscription(
    session: AsyncSession, user: User, sub_id: uuid.UUID, body: SubscriptionUpdate
) -> SubscriptionOut:
    row = await own_subscription(session, user, sub_id)
    if body.params is not None:
        try:
            check_params(AlertType(row.type), body.params)
        except ValueError as error:
            raise AppError(422, "invalid_params", str(error), {"type": row.type}) from error
        row.params = stored(body.params)
    if body.channels is not None:
        row.channels = sorted(set(body.channels))
    if body.active is not None:
        row.active = body.active
    row.updated_at = utcnow()
    session.add(row)
    await session.commit()
    await session.refresh(row)
    return sub_out(row)


async def delete_subscription(session: AsyncSession, user: User, sub_id: uuid.UUID) -> None:
    """Deleted for good; the alerts it raised stay (their subscription id cleared)."""
    row = await own_subscription(session, user, sub_id)
    await session.execute(
        update(MemberAlert).where(col(MemberAlert.subscription_id) == sub_id).values(subscription_id=None)
    )
    await session.delete(row)
    await session.commit()


# --- the alerts raised ----------------------------------------------------------------------------------------


def alert_out(row: MemberAlert) -> AlertOut:
    return AlertOut(**row.model_dump(exclude={"user_id", "dedupe_key", "deleted_at"}))


async def list_alerts(
    session: AsyncSession,
    user: User,
    page: PageParams,
    unread: bool | None,
    kind: AlertType | None,
    include_dismissed: bool,
) -> Page[AlertOut]:
    statement = select(MemberAlert).where(col(MemberAlert.user_id) == user.id, col(MemberAlert.deleted_at).is_(None))
    if unread is not None:
        statement = statement.where(
            col(MemberAlert.read_at).is_(None) if unread else col(MemberAlert.read_at).is_not(None)
        )
    if kind is not None:
        statement = statement.where(col(MemberAlert.type) == kind)
    if not include_dismissed:
        statement = statement.where(col(MemberAlert.dismissed_at).is_(None))
    rows, total = await paginate(session, statement, page, [col(MemberAlert.created_at).desc(), col(MemberAlert.id)])
    return Page(items=[alert_out(r) for r in rows], total=total, limit=page.limit, offset=page.offset)


async def own_alert(session: AsyncSession, user: User, alert_id: uuid.UUID) -> MemberAlert:
    row = await session.get(MemberAlert, alert_id)
    if row is None or row.user_id != user.id or row.deleted_at is not None:
        raise access.not_visible(user, Entity.member_alert, alert_id, exists=row is not None)
    return row


async def mark(
    session: AsyncSession, user: User, alert_id: uuid.UUID, what: Literal["read", "dismissed", "deleted"]
) -> AlertOut:
    """Sets read_at, dismissed_at or deleted_at once (again: unchanged, so a retried call is harmless)."""
    row = await own_alert(session, user, alert_id)
    column = f"{what}_at"
    if getattr(row, column) is None:
        setattr(row, column, utcnow())
        session.add(row)
        await session.commit()
        await session.refresh(row)
    return alert_out(row)
