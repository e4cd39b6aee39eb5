"""Payments shared by the payment and transfer endpoints (and the loan endpoints' idempotency): ids from the
Idempotency-Key, the request's digest, recording a new payment, the response shape, and a book transfer or an ACH
payment from request to workflow (the API's and a standing instruction's run's one path)."""

import asyncio
import hashlib
import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, Field
from sqlalchemy import Table, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy

from activities.ach import PaymentRejected, ach_payment_input, check_ach_payment
from api.crud import required
from api.errors import AppError
from api.fields import Money, line_rules
from api.pagination import Page, paginate
from core import access, audit, ledger
from core import search_attributes as sa
from core.access import Action, Entity
from core.config import Settings
from core.task_queues import queue_for
from core.temporal import published
from domain import maker_checker, webhooks
from domain.accounts import check_transfer_currency
from models.external_accounts import ExternalAccount
from models.ledger import AccountKind, AccountStatus, InternalAccountType, LedgerAccount
from models.maker_checker import MakerCheckerKind
from models.payments import BookTransferInput, Payment, PaymentEvent, PaymentKind, PaymentStatus
from models.users import User
from workflows.ach_payment import AchPaymentWorkflow
from workflows.book_transfer import BookTransferWorkflow

_PAYMENT_NS = uuid.UUID("6f1c3c52-3d1e-4a53-9a4c-5d8f0b6a7e21")
PAYMENTS: Table = Payment.__table__  # type: ignore[attr-defined]  # set by SQLAlchemy; SQLModel does not declare it


class BookTransferIn(BaseModel):
    from_account_id: uuid.UUID
    to_account_id: uuid.UUID
    amount: Money
    memo: Annotated[str, *line_rules(140)] = Field(default="", examples=["Rent share"])


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


class EventOut(BaseModel):
    status: str
    at: datetime
    detail: dict | None


class PaymentOut(BaseModel):
    id: uuid.UUID
    kind: str
    status: str
    workflow_status: str | None = Field(
        None,
        description=(
            "the status the workflow last published (its PaymentStatus search attribute, as the Temporal server holds "
            "it); null in the answer to a create, which comes from the database alone, or when Temporal cannot say. "
            "`status` (the database) is the source of truth"
        ),
    )
    amount: Decimal
    currency: str
    from_account_id: uuid.UUID | None
    to_account_id: uuid.UUID | None
    memo: str
    workflow_id: str
    journal_entry_id: uuid.UUID | None
    failure_code: str | None
    failure_reason: str | None
    external_account_id: uuid.UUID | None = None
    sec_code: str | None = None
    trace_number: str | None = None
    presentments: int = 0
    return_code: str | None = None
    window_id: str | None = None
    effective_date: date | None = None
    settlement_date: date | None = None
    created_at: datetime
    events: list[EventOut] = []


TransferOut = PaymentOut


def payment_id_for(user: User, key: str) -> uuid.UUID:
    return uuid.uuid5(_PAYMENT_NS, f"{user.id}:{key}")


class _WithAmount(Protocol):
    amount: Decimal

    def model_dump(self, *, mode: str) -> dict[str, Any]: ...


def request_hash(body: _WithAmount) -> str:
    canonical = json.dumps({**body.model_dump(mode="json"), "amount": str(body.amount.normalize())}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def payment_out(
    session, client: Client | None, payment: Payment, workflow_status: str | None = None
) -> TransferOut:
    """The row and its history. With a client, also what the workflow last published: the Temporal server answers
    that from its own records (describe), never by a query to a worker, so no answer waits on a busy or absent
    worker. A create passes no client: it answers from the database once the workflow start is durable."""
    if client is not None:
        await session.commit()  # no pooled connection held across the call to Temporal
        workflow_status = await published(client, payment.workflow_id, sa.PAYMENT_STATUS)
    return (await payments_out(session, [payment], workflow_status))[0]


async def payments_out(session, payments: list[Payment], workflow_status: str | None = None) -> list[PaymentOut]:
    """The rows with their histories, read in one query for the whole page."""
    events: dict[uuid.UUID, list[EventOut]] = {p.id: [] for p in payments}
    for e in (
        await session.exec(
            select(PaymentEvent).where(col(PaymentEvent.payment_id).in_(list(events))).order_by(col(PaymentEvent.id))
        )
    ).all():
        events[e.payment_id].append(EventOut(status=e.status, at=e.at, detail=e.detail))
    return [PaymentOut(**p.model_dump(), workflow_status=workflow_status, events=events[p.id]) for p in payments]


async def list_of_payments(
    session,
    user: User,
    page,
    *,
    kind=None,
    status=None,
    account_id=None,
    created_from=None,
    created_to=None,
    min_amount=None,
    max_amount=None,
    return_code=None,
) -> Page[PaymentOut]:
    """The filters every payment list shares; `account_id` matches either side, internal or external."""
    statement = access.scope(user, Entity.payment, select(Payment))
    for column, value in ((Payment.kind, kind), (Payment.status, status), (Payment.return_code, return_code)):
        if value is not None:
            statement = statement.where(column == value)
    if account_id:
        statement = statement.where(
            or_(
                Payment.from_account_id == account_id,
                Payment.to_account_id == account_id,
                Payment.external_account_id == account_id,
            )
        )
    if created_from:
        statement = statement.where(Payment.created_at >= created_from)
    if created_to:
        statement = statement.where(Payment.created_at < created_to)
    if min_amount is not None:
        statement = statement.where(Payment.amount >= min_amount)
    if max_amount is not None:
        statement = statement.where(Payment.amount <= max_amount)
    items, total = await paginate(session, statement, page, [col(Payment.created_at).desc(), Payment.id])
    return Page(items=await payments_out(session, items), total=total, limit=page.limit, offset=page.offset)


async def _start(client: Client, settings, payment: Payment, src: LedgerAccount, dst: LedgerAccount) -> WorkflowHandle:
    return await client.start_workflow(
        BookTransferWorkflow.run,
        BookTransferInput(
            payment_id=payment.id,
            amount=payment.amount,
            from_account_id=src.id,
            to_account_id=dst.id,
            org_id=payment.org_id,
        ),
        id=payment.workflow_id,
        task_queue=queue_for(settings, BookTransferWorkflow),
        # A retry of the request after a crash between insert and start reattaches to the running workflow.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"Book transfer ${payment.amount:,.2f} from {src.name} (…{str(src.id)[-4:]}) to {dst.name} (…{str(dst.id)[-4:]})",
        static_details=f"payment {payment.id}\n{payment.memo}",
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.PAYMENT_STATUS, PaymentStatus.created.value),
                SearchAttributePair(sa.PAYMENT_KIND, PaymentKind.book.value),
                SearchAttributePair(sa.PAYMENT_AMOUNT, float(payment.amount)),
                SearchAttributePair(sa.ACCOUNT_ID, str(src.id)),
                *([SearchAttributePair(sa.ORG_ID, str(payment.org_id))] if payment.org_id else []),
            ]
        ),
    )


async def record_new_payment(
    session, user: User, payment_id: uuid.UUID, key: str, digest: str, columns: dict, audit_after: dict
) -> bool:
    """Inserts the payment with its 'created' event and audit row; a concurrent request with the same key
    finds the row instead (ON CONFLICT), so one key is one payment: False then. The caller commits, before it starts
    the workflow."""
    inserted = (
        await session.execute(
            pg_insert(PAYMENTS)
            .values(
                id=payment_id,
                status=PaymentStatus.created,
                created_by=user.id,
                idempotency_key=key,
                request_hash=digest,
                workflow_id=f"payment-{payment_id}",
                **{"currency": "USD", **columns},  # a book transfer's is its accounts' currency
            )
            .on_conflict_do_nothing()
            .returning(PAYMENTS.c.id)
        )
    ).first()
    if inserted is not None:
        await webhooks.add_payment_event(session, payment_id, PaymentStatus.created, "created", None)
        await audit.record(
            session,
            actor=user.email,
            actor_id=user.id,
            action="payment.created",
            entity_type="payment",
            entity_id=payment_id,
            after=audit_after,
        )
    return inserted is not None


async def idempotent_payment(session, payment_id: uuid.UUID, digest: str) -> Payment:
    """The payment the key names: 409 when the key came with another body (the caller answers 200, not 201, when
    it existed before the request)."""
    # One read, over whatever this session holds of it (the row read before the insert was tried, or none).
    payment = required(await session.get(Payment, payment_id, populate_existing=True), "the idempotent payment")
    if payment.request_hash != digest:
        raise AppError(
            409,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request",
            {"payment_id": payment.id},
        )
    return payment


async def create_book_transfer(
    body: BookTransferIn, key: str, session, user: User, client: Client, settings: Settings
) -> tuple[PaymentOut, int]:
    """A book transfer from request to workflow: the payment and the HTTP status it answers with (201 created,
    200 the same key and body again, 202 still running)."""
    payment_id = payment_id_for(user, key)
    digest = request_hash(body)
    created = False  # by this request: a concurrent one with the same key may insert first
    if await session.get(Payment, payment_id) is None:
        src = await access.visible(session, user, Entity.account, body.from_account_id)
        dst = await _destination(session, user, body.to_account_id)
        _check_transfer(user, body, src, dst)
        available = (await ledger.balances(session, [src.id]))[src.id].available
        if available < body.amount:
            raise AppError(
                422,
                "insufficient_funds",
                "the available balance does not cover the amount",
                {"available_balance": available, "amount": body.amount},
            )
        created = await record_new_payment(
            session,
            user,
            payment_id,
            key,
            digest,
            {
                "kind": PaymentKind.book,
                "amount": body.amount,
                "currency": src.currency,
                "from_account_id": src.id,
                "to_account_id": dst.id,
                "memo": body.memo,
                "org_id": src.org_id,
            },
            {
                "kind": "book",
                "amount": str(body.amount),
                "from_account_id": str(src.id),
                "to_account_id": str(dst.id),
                "memo": body.memo,
            },
        )
    payment = await idempotent_payment(session, payment_id, digest)
    status_code = 201 if created else 200
    workflow_status = None
    if payment.status not in (PaymentStatus.completed, PaymentStatus.failed):
        src = await session.get(LedgerAccount, payment.from_account_id)
        dst = await session.get(LedgerAccount, payment.to_account_id)
        await session.commit()  # give the connection back while we wait on Temporal
        handle = await _start(client, settings, payment, src, dst)
        try:  # a book transfer is immediate: worth a short wait for its result (never a query to the worker)
            outcome = await asyncio.wait_for(handle.result(), timeout=settings.book_transfer_wait.total_seconds())
            workflow_status = outcome.status
        except TimeoutError:
            status_code = 202
        session.expire_all()
        payment = await session.get(Payment, payment_id)
    return await payment_out(session, None, payment, workflow_status), status_code


async def large_book_transfer(
    body: BookTransferIn, key: str, session, user: User, client: Client, settings: Settings
) -> "maker_checker.MakerCheckerOut | None":
    """A book transfer above the source's organization's maker-checker threshold as a request (domain/maker_checker.py), checked
    like any transfer first; None when it is not one (at or below the threshold, or its key already names a
    payment: create_book_transfer answers it as before, the workflow untouched)."""
    if await session.get(Payment, payment_id_for(user, key)) is not None:
        return None
    fields = maker_checker.transfer_fields(body)
    found = await maker_checker.existing_request(session, user, MakerCheckerKind.book_transfer, key, fields)
    if found is not None:
        return await maker_checker.resume(session, client, settings, found)
    src = await access.visible(session, user, Entity.account, body.from_account_id)
    if not await maker_checker.is_large(session, client, settings, src.org_id, body.amount, src.currency):
        return None
    dst = await _destination(session, user, body.to_account_id)
    _check_transfer(user, body, src, dst)
    return await maker_checker.request_book_transfer(session, user, client, settings, key, body, src, dst)


async def _destination(session, user: User, account_id: uuid.UUID) -> LedgerAccount:
    """Money may go to any internal account the policy lets the caller pay into (core/access.py)."""
    account = await session.get(LedgerAccount, account_id)
    if account is None or account.kind != AccountKind.internal or not access.can_pay_into(user, account):
        raise access.not_visible(user, Entity.account, account_id, exists=account is not None)
    return account


def _check_transfer(user: User, body: BookTransferIn, src: LedgerAccount, dst: LedgerAccount) -> None:
    access.check_move_money(user, src)
    if src.id == dst.id:
        raise AppError(422, "same_account", "the source and destination accounts are the same")
    for side, account in (("from", src), ("to", dst)):
        if account.kind != AccountKind.internal or account.type == InternalAccountType.loan:
            raise AppError(
                422,
                "not_a_deposit_account",
                f"the {side} account is not a checking or savings account",
                {"account_id": account.id},
            )
        if account.status != AccountStatus.active:
            raise AppError(422, "account_closed", f"the {side} account is closed", {"account_id": account.id})
    check_transfer_currency(src, dst, body.amount)


async def visible_payment(session, user: User, payment_id: uuid.UUID, called: str = "payment") -> Payment:
    """A payment the caller may read; a 404 otherwise, naming it as `called` (a transfer, a payment)."""
    payment: Payment = await access.visible(session, user, Entity.payment, payment_id, called=called)
    return payment


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


async def create_ach_payment(
    body: PaymentIn, key: str, session, user: User, client: Client, settings: Settings
) -> tuple[PaymentOut, int]:
    """An ACH debit or credit from request to workflow: the payment and the HTTP status it answers with (201 created,
    200 the same key and body again). Nothing is written when it is refused (a 4xx)."""
    if body.external_account_id is None:
        raise AppError(422, "external_account_required", "an ACH payment needs external_account_id")
    access.gate(user, Entity.payment, Action.create_ach, "ACH payments are made by an org admin or a superuser")

    payment_id, digest = payment_id_for(user, key), request_hash(body)
    created = False  # by this request: a concurrent one with the same key may insert first
    if await session.get(Payment, payment_id) is None:
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
        created = await record_new_payment(
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
    # In the insert's transaction: a concurrent request's row with the same key is committed once ON CONFLICT has
    # passed it, so this read sees it (READ COMMITTED takes a snapshot a statement).
    payment = await idempotent_payment(session, payment_id, digest)
    external = required(
        await session.get(ExternalAccount, payment.external_account_id), "the payment's external account"
    )
    # The answer is the row and its history as committed here; the workflow's later steps are the GET's to show.
    out = await payment_out(session, None, payment)
    await session.commit()  # no pooled connection held across the call to Temporal
    # Started (or found) after the row is committed: a retry after a crash in between starts it then.
    await start_ach_workflow(client, settings, payment, external)
    return out, 201 if created else 200
