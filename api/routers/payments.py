"""Payments of every kind: book transfers (immediate) and ACH debits and credits (a lifecycle workflow each).
The Idempotency-Key decides the payment id and so its workflow id."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.service import RPCError

from activities.ach import PaymentRejected, ach_payment_input, check_ach_payment
from api.crud import required
from api.deps import CurrentUser, IdempotencyKey, ReadSessionDep, SessionDep, SettingsDep, TemporalDep
from api.errors import AppError
from api.fields import BusinessDateTime, Filter, Money, MoneyFilter, line_rules
from api.pagination import Page, PageDep
from core import access
from core import search_attributes as sa
from core.access import Action, Entity
from core.config import Settings
from core.task_queues import queue_for
from domain import payments as payment_domain
from domain.payments import (
    BookTransferIn,
    PaymentOut,
    idempotent_payment,
    list_of_payments,
    payment_id_for,
    payment_out,
    record_new_payment,
    request_hash,
    visible_payment,
)
from models.external_accounts import ExternalAccount
from models.payments import CANCELABLE_STATUSES, CancelRequest, Payment, PaymentKind, PaymentStatus
from workflows.ach_payment import AchPaymentWorkflow

router = APIRouter(prefix="/payments", tags=["payments"])


class PaymentIn(BaseModel):
    kind: PaymentKind = Field(examples=["ach_debit"])
    amount: Money
    account_id: uuid.UUID = Field(
        description="the internal account: the source of a credit or a book transfer, the destination of a debit"
    )
    to_account_id: uuid.UUID | None = Field(default=None, description="book transfers: the destination")
    external_account_id: uuid.UUID | None = Field(default=None, description="ACH: the external bank account")
    sec_code: Literal["PPD", "CCD", "WEB"] | None = Field(
        default=None, description="ACH: PPD for consumer accounts (default), CCD for corporate, WEB for online"
    )
    memo: Annotated[str, *line_rules(140)] = ""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "kind": "ach_debit",
                    "amount": "125.00",
                    "account_id": "544bfde0-5007-5e84-a9ab-4f8b41458229",
                    "external_account_id": "…",
                    "memo": "Top-up from my bank",
                }
            ]
        }
    }


def _ach_summary(payment: Payment, external: ExternalAccount) -> str:
    direction = "from" if payment.kind == PaymentKind.ach_debit else "to"
    kind = "ACH debit" if payment.kind == PaymentKind.ach_debit else "ACH credit"
    return f"{kind} ${payment.amount:,.2f} {direction} {external.institution_name} …{external.account_last4}"


async def start_ach_workflow(client: Client, settings: Settings, payment: Payment, external: ExternalAccount) -> None:
    account_id = payment.to_account_id if payment.kind == PaymentKind.ach_debit else payment.from_account_id
    await client.start_workflow(
        AchPaymentWorkflow.run,
        ach_payment_input(settings, payment.id, payment.kind, payment.amount),
        id=payment.workflow_id,
        task_queue=queue_for(settings, AchPaymentWorkflow),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=_ach_summary(payment, external),
        static_details=f"payment {payment.id}\n{payment.memo}",
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.PAYMENT_STATUS, PaymentStatus.created.value),
                SearchAttributePair(sa.PAYMENT_KIND, payment.kind),
                SearchAttributePair(sa.PAYMENT_AMOUNT, float(payment.amount)),
                SearchAttributePair(sa.ACCOUNT_ID, str(account_id)),
                SearchAttributePair(sa.ORG_ID, str(payment.org_id)),
            ]
        ),
    )


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
    if body.external_account_id is None:
        raise AppError(422, "external_account_required", "an ACH payment needs external_account_id")
    access.gate(user, Entity.payment, Action.create_ach, "ACH payments are made by an org admin or a superuser")

    payment_id, digest = payment_id_for(user, key), request_hash(body)
    existing = await session.get(Payment, payment_id)
    if existing is None:
        account = await access.visible(session, user, Entity.account, body.account_id)
        external = await access.visible(session, user, Entity.external_account, body.external_account_id)
        try:
            await check_ach_payment(session, settings, body.kind, body.amount, account, external)
        except PaymentRejected as rejected:
            raise AppError(
                422, rejected.code, rejected.reason, {"account_id": account.id, "external_account_id": external.id}
            ) from rejected
        credit = body.kind == PaymentKind.ach_credit
        sec_code = body.sec_code or ("PPD" if account.owner_id else "CCD")
        await record_new_payment(
            session,
            user,
            payment_id,
            key,
            digest,
            {
                "kind": body.kind,
                "amount": body.amount,
                "from_account_id": account.id if credit else None,
                "to_account_id": None if credit else account.id,
                "external_account_id": external.id,
                "sec_code": sec_code,
                "memo": body.memo,
                "org_id": account.org_id,
            },
            {
                "kind": body.kind,
                "amount": str(body.amount),
                "account_id": str(account.id),
                "external_account_id": str(external.id),
                "sec_code": sec_code,
            },
        )
    payment = await idempotent_payment(session, payment_id, digest)
    if existing is not None:
        response.status_code = 200
    # Started (or found) after the row is committed: a retry after a crash in between starts it then.
    external = required(
        await session.get(ExternalAccount, payment.external_account_id), "the payment's external account"
    )
    await session.commit()  # no pooled connection held across the call to Temporal
    await start_ach_workflow(client, settings, payment, external)
    # The start is durable now: answer from the database, whatever the worker is doing.
    return await payment_out(session, None, payment)


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
