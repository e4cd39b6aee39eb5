"""A member's alert subscriptions and the alerts raised for them (domain/alerts.py)."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from api.deps import CurrentUser, SessionDep
from api.pagination import Page, PageDep
from domain import alerts
from domain.alerts import AlertOut, SubscriptionIn, SubscriptionOut, SubscriptionUpdate
from models.member_budgets import AlertType

subscriptions = APIRouter(prefix="/alert-subscriptions", tags=["alerts"])
router = APIRouter(prefix="/alerts", tags=["alerts"])
NOT_YOURS: dict[int | str, dict[str, Any]] = {404: {"description": "none of yours"}}


@subscriptions.post(
    "",
    response_model=SubscriptionOut,
    status_code=201,
    responses={403: {"description": "not a member"}, 422: {"description": "params that do not fit the type"}},
    summary="Ask for an alert: low balance, bill due, budget threshold, large transaction or payment returned",
)
async def create_subscription(body: SubscriptionIn, session: SessionDep, user: CurrentUser) -> SubscriptionOut:
    return await alerts.create_subscription(session, user, body)


@subscriptions.get("", response_model=Page[SubscriptionOut], summary="Your alert subscriptions, newest first")
async def list_subscriptions(
    session: SessionDep, user: CurrentUser, page: PageDep, type: AlertType | None = None
) -> Page[SubscriptionOut]:
    return await alerts.list_subscriptions(session, user, page, type)


@subscriptions.get("/{subscription_id}", response_model=SubscriptionOut, responses=NOT_YOURS, summary="A subscription")
async def get_subscription(subscription_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> SubscriptionOut:
    return alerts.sub_out(await alerts.own_subscription(session, user, subscription_id))


@subscriptions.put(
    "/{subscription_id}", response_model=SubscriptionOut, responses=NOT_YOURS, summary="Change channels, params, active"
)
async def update_subscription(
    subscription_id: uuid.UUID, body: SubscriptionUpdate, session: SessionDep, user: CurrentUser
) -> SubscriptionOut:
    return await alerts.update_subscription(session, user, subscription_id, body)


@subscriptions.delete("/{subscription_id}", status_code=204, responses=NOT_YOURS, summary="Stop an alert")
async def delete_subscription(subscription_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Response:
    await alerts.delete_subscription(session, user, subscription_id)
    return Response(status_code=204)


@router.get("", response_model=Page[AlertOut], summary="Your alerts, newest first (not the deleted)")
async def list_alerts(
    session: SessionDep,
    user: CurrentUser,
    page: PageDep,
    unread: bool | None = None,
    type: AlertType | None = None,
    include_dismissed: Annotated[bool, Query(description="dismissed alerts too")] = False,
) -> Page[AlertOut]:
    return await alerts.list_alerts(session, user, page, unread, type, include_dismissed)


@router.post("/{alert_id}/read", response_model=AlertOut, responses=NOT_YOURS, summary="Mark an alert read")
async def read_alert(alert_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> AlertOut:
    return await alerts.mark(session, user, alert_id, "read")


@router.post("/{alert_id}/dismiss", response_model=AlertOut, responses=NOT_YOURS, summary="Dismiss an alert")
async def dismiss_alert(alert_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> AlertOut:
    return await alerts.mark(session, user, alert_id, "dismissed")


@router.delete("/{alert_id}", status_code=204, responses=NOT_YOURS, summary="Delete an alert (kept, hidden)")
async def delete_alert(alert_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Response:
    await alerts.mark(session, user, alert_id, "deleted")
    return Response(status_code=204)
