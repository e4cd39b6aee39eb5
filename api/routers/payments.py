"""Payments of every kind: book transfers (immediate) and ACH debits and credits (a lifecycle workflow each).
The Idempotency-Key decides the payment id and so its workflow id."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from api.crud import required
from api.deps import CurrentUser, IdempotencyKey, ReadSessionDep, SessionDep, SettingsDep, TemporalDep
from api.errors import AppError
from api.fields import BusinessDateTime, Filter, MoneyFilter
from api.pagination import Page, PageDep
from core import access
from domain import payments as payment_domain
from domain.payments import (
    BookTransferIn,
    PaymentIn,
    PaymentOut,
    list_of_payments,
    payment_out,
    visible_payment,
)
from models.payments import CANCELABLE_STATUSES, CancelRequest, Payment, PaymentKind, PaymentStatus
from workflows.ach_payment import AchPaymentWorkflow

router = APIRouter(prefix="/payments", tags=["payments"])


@router.post(
    "",
    response_model=PaymentOut,
    status_code=201,
    responses={
        200: {"description": "the same Idempotency-Key and body again: the existing payment"},
        409: {"description": "the Idempotency-Key was used with another body"},
        422: {"description": "invalid: nothing is written"},
    },
    summary="Create a payment: ACH debit (pull), ACH credit (push) or book transfer",
)
async def create_payment(
    body: PaymentIn,
    key: IdempotencyKey,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    client: TemporalDep,
    settings: SettingsDep,
):
    if body.kind == PaymentKind.book:
        if body.to_account_id is None:
            raise AppError(422, "to_account_required", "a book transfer needs to_account_id")
        transfer = BookTransferIn(
            from_account_id=body.account_id, to_account_id=body.to_account_id, amount=body.amount, memo=body.memo
        )
        out, response.status_code = await payment_domain.create_book_transfer(
            transfer, key, session, user, client, settings
        )
        return out
    out, response.status_code = await payment_domain.create_ach_payment(body, key, session, user, client, settings)
    return out


@router.get("/{payment_id}", response_model=PaymentOut, summary="A payment: status, every transition, return code")
async def get_payment(payment_id: uuid.UUID, session: SessionDep, user: CurrentUser, client: TemporalDep):
    return await payment_out(session, client, await visible_payment(session, user, payment_id))


@router.get("", response_model=Page[PaymentOut], summary="Payments you can see, newest first")
async def list_payments(
    session: ReadSessionDep,
    user: CurrentUser,
    page: PageDep,
    status: PaymentStatus | None = None,
    kind: PaymentKind | None = None,
    account_id: Annotated[uuid.UUID | None, Query(description="internal or external")] = None,
    created_from: Annotated[BusinessDateTime | None, Query(description="inclusive")] = None,
    created_to: Annotated[BusinessDateTime | None, Query(description="exclusive")] = None,
    min_amount: MoneyFilter | None = None,
    max_amount: MoneyFilter | None = None,
    return_code: Filter | None = None,
):
    return await list_of_payments(
        session,
        user,
        page,
        kind=kind,
        status=status,
        account_id=account_id,
        created_from=created_from,
        created_to=created_to,
        min_amount=min_amount,
        max_amount=max_amount,
        return_code=return_code,
    )


@router.post(
    "/{payment_id}/cancel",
    response_model=PaymentOut,
    responses={409: {"description": "too late"}},
    summary="Cancel a payment that is not yet in a file sent to the bank",
)
async def cancel_payment(payment_id: uuid.UUID, session: SessionDep, user: CurrentUser, client: TemporalDep):
    payment = await visible_payment(session, user, payment_id)
    access.check_cancel_payment(user, payment)
    if payment.status == PaymentStatus.canceled:
        return await payment_out(session, client, payment)  # canceling twice is canceling once
    if payment.kind == PaymentKind.book or payment.status not in CANCELABLE_STATUSES:
        raise AppError(
            409,
            "not_cancelable",
            f"the payment is {payment.status}: it can no longer be canceled",
            {"status": payment.status},
        )
    await session.commit()  # no pooled connection held while the update runs
    try:
        await client.get_workflow_handle(payment.workflow_id).execute_update(
            AchPaymentWorkflow.cancel, CancelRequest(payment_id=payment.id, actor=user.email, actor_id=user.id)
        )
    except WorkflowUpdateFailedError as exc:
        session.expire_all()
        current = required(await session.get(Payment, payment_id), "the payment")
        raise AppError(
            409,
            "not_cancelable",
            f"the payment is {current.status}: it can no longer be canceled",
            {"status": current.status, "reason": str(exc.cause)},
        ) from exc
    except RPCError as exc:
        raise AppError(409, "not_cancelable", "the payment's workflow is no longer running", str(exc)) from exc
    session.expire_all()
    return await payment_out(session, client, required(await session.get(Payment, payment_id), "the payment"))
