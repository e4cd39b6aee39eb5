"""Card payments in through the payment gateway: a member repays a loan or pays a bill at the gateway's hosted
checkout (domain/gateway.py). The gateway's own webhook is in api/routers/webhooks.py."""

import uuid

from fastapi import APIRouter, Response

from api.deps import CurrentUser, IdempotencyKey, SessionDep, SettingsDep, TemporalDep
from api.pagination import Page, PageDep
from domain import gateway
from domain.gateway import GatewayPaymentIn, GatewayPaymentOut
from models.gateway import GatewayPurpose, GatewayStatus

router = APIRouter(prefix="/gateway-payments", tags=["gateway payments"])


@router.post(
    "",
    response_model=GatewayPaymentOut,
    status_code=201,
    responses={
        200: {"description": "the same Idempotency-Key and body again: the payment already made"},
        404: {"description": "no such loan or bill that you can see"},
        409: {"description": "the loan is not active, the bill is not due or is being paid, the key was reused"},
        422: {"description": "no target or two, a bill's amount that is not the bill's, a bill with no account"},
    },
    summary="Pay a loan or a bill by card: opens the gateway's checkout and answers with its URL",
)
async def create_gateway_payment(
    body: GatewayPaymentIn,
    key: IdempotencyKey,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    client: TemporalDep,
    settings: SettingsDep,
) -> GatewayPaymentOut:
    out, created = await gateway.create(session, user, client, settings, body, key)
    response.status_code = 201 if created else 200
    return out


@router.get("", response_model=Page[GatewayPaymentOut], summary="Card payments you can see, newest first")
async def list_gateway_payments(
    session: SessionDep,
    user: CurrentUser,
    page: PageDep,
    status: GatewayStatus | None = None,
    purpose: GatewayPurpose | None = None,
    loan_id: uuid.UUID | None = None,
    bill_id: uuid.UUID | None = None,
) -> Page[GatewayPaymentOut]:
    return await gateway.listing(session, user, page, status, purpose, loan_id, bill_id)


@router.get("/{payment_id}", response_model=GatewayPaymentOut, summary="A card payment: its checkout and outcome")
async def get_gateway_payment(payment_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> GatewayPaymentOut:
    return gateway.view(await gateway.visible(session, user, payment_id))
