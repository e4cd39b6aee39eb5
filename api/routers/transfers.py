"""Book transfers between internal accounts. The Idempotency-Key decides the payment id and so the
workflow id: a retried request finds the same payment and the same workflow (domain/payments.py)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from api.deps import CurrentUser, IdempotencyKey, ReadSessionDep, SessionDep, SettingsDep, TemporalDep
from api.fields import BusinessDateTime, MoneyFilter
from api.pagination import Page, PageDep
from domain import payments
from domain.maker_checker import MakerCheckerOut
from domain.payments import BookTransferIn, TransferOut, list_of_payments, payment_out, visible_payment
from models.payments import PaymentKind, PaymentStatus

router = APIRouter(prefix="/transfers", tags=["transfers"])


@router.post(
    "/book",
    response_model=TransferOut,
    status_code=201,
    responses={
        200: {"description": "the same Idempotency-Key and body again: the existing transfer"},
        202: {
            "model": TransferOut | MakerCheckerOut,
            "description": "accepted, still running (a transfer); or above the maker-checker threshold, a request "
            "waiting on a checker with the amount held on the source account (GET /maker-checker/{id})",
        },
        409: {"description": "the Idempotency-Key was used with another body"},
        422: {"description": "invalid, or insufficient available balance (nothing is written)"},
    },
    summary="Move money between two internal accounts, at once (a large amount waits on a checker)",
)
async def create_book_transfer(
    body: BookTransferIn,
    key: IdempotencyKey,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    client: TemporalDep,
    settings: SettingsDep,
) -> TransferOut | JSONResponse:
    if request := await payments.large_book_transfer(body, key, session, user, client, settings):
        return JSONResponse(request.model_dump(mode="json"), status_code=202)
    transfer, response.status_code = await payments.create_book_transfer(body, key, session, user, client, settings)
    return transfer


@router.get(
    "/{payment_id}",
    response_model=TransferOut,
    summary="A transfer: the database row, its history and what its workflow says",
)
async def get_transfer(
    payment_id: uuid.UUID, session: SessionDep, user: CurrentUser, client: TemporalDep
) -> TransferOut:
    return await payment_out(session, client, await visible_payment(session, user, payment_id, "transfer"))


@router.get("", response_model=Page[TransferOut], summary="Transfers you can see, newest first")
async def list_transfers(
    session: ReadSessionDep,
    user: CurrentUser,
    page: PageDep,
    status: PaymentStatus | None = None,
    account_id: uuid.UUID | None = None,
    created_from: Annotated[BusinessDateTime | None, Query(description="inclusive")] = None,
    created_to: Annotated[BusinessDateTime | None, Query(description="exclusive")] = None,
    min_amount: MoneyFilter | None = None,
    max_amount: MoneyFilter | None = None,
) -> Page[TransferOut]:
    return await list_of_payments(
        session,
        user,
        page,
        kind=PaymentKind.book,
        status=status,
        account_id=account_id,
        created_from=created_from,
        created_to=created_to,
        min_amount=min_amount,
        max_amount=max_amount,
    )
