"""Card payments IN through the payment gateway (PRODUCT.md §4.8): a member repays a loan or pays a bill at the
gateway's hosted checkout (initialize -> checkout -> verify / signed webhook, as Paystack or Flutterwave do).

POST /gateway-payments makes the row under the caller's Idempotency-Key, starts `gateway-payment-<id>`
(workflows/gateway_payment.py) and answers with the checkout URL once the workflow has it (its `checkout` update).
A bill is held (processing) while its checkout is open, as auto-pay holds it; a loan is repaid once the money is in.

The gateway's webhook (POST /webhooks/gateway) is signed with HMAC-SHA512 of the raw body under our secret key: a bad
signature is a 401 with nothing written. Each event is recorded once by its id (gateway_events) and handed to the
payment's workflow by signal-with-start (a 503 while Temporal does not answer: the gateway delivers again, and the
event, recorded, is handed over then): a redelivery, or the same outcome by verify, has no second effect (the
posting is keyed by the payment)."""

import asyncio
import hashlib
import hmac
import json
import logging
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.service import RPCError

from activities.loan_servicing import quote
from api.errors import AppError
from api.fields import Money, line_rules
from api.pagination import Page, paginate
from core import access, audit
from core import search_attributes as sa
from core.access import Action, Entity
from core.business_time import business_today
from core.config import Settings
from core.loan_books import installment_balances
from core.task_queues import queue_for
from finance.money import format_usd
from models.bills import DUE_STATUSES, Bill, BillStatus
from models.gateway import (
    OPEN_STATUSES,
    GatewayOutcome,
    GatewayPayment,
    GatewayPaymentInput,
    GatewayPurpose,
    GatewayStatus,
)
from models.loans import Loan
from models.users import User
from workflows.gateway_payment import GatewayPaymentWorkflow

log = logging.getLogger("domain.gateway")

REPAYMENT_MODES = Literal["installment", "prepayment", "payoff"]
EVENT_TYPES = {"charge.success": "success", "charge.failed": "failed"}


class GatewayPaymentIn(BaseModel):
    purpose: GatewayPurpose
    loan_id: uuid.UUID | None = Field(default=None, description="purpose loan_repayment: the loan repaid")
    bill_id: uuid.UUID | None = Field(default=None, description="purpose bill: the bill paid")
    amount: Money | None = Field(default=None, description="a loan repayment's amount; a bill's is its own amount")
    mode: REPAYMENT_MODES = Field(default="installment", description="a loan repayment: as the manual repayment's")

    @model_validator(mode="after")
    def one_target(self) -> "GatewayPaymentIn":
        if self.purpose == GatewayPurpose.loan_repayment:
            if self.loan_id is None or self.bill_id is not None:
                raise ValueError("a loan repayment names `loan_id` (and no `bill_id`)")
            if self.amount is None or self.amount <= 0:
                raise ValueError("a loan repayment needs a positive `amount`")
        elif self.bill_id is None or self.loan_id is not None:
            raise ValueError("a bill payment names `bill_id` (and no `loan_id`)")
        if self.purpose == GatewayPurpose.bill and self.mode != "installment":
            raise ValueError("`mode` is a loan repayment's")
        return self


class GatewayPaymentOut(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    payer_id: uuid.UUID
    purpose: str
    loan_id: uuid.UUID | None
    bill_id: uuid.UUID | None
    amount: Decimal
    currency: str
    repayment_mode: str | None
    reference: str
    status: str
    authorization_url: str | None = Field(description="the gateway's hosted checkout: send the member there")
    access_code: str | None
    confirmed_by: str | None = Field(description="webhook or verify: what told us the outcome")
    gateway_amount: Decimal | None
    gateway_currency: str | None
    journal_entry_id: uuid.UUID | None
    repayment_entry_id: uuid.UUID | None
    failure: str | None
    workflow_id: str
    created_at: datetime
    closed_at: datetime | None


def view(payment: GatewayPayment) -> GatewayPaymentOut:
    return GatewayPaymentOut.model_validate(payment, from_attributes=True)


def workflow_input(settings: Settings, payment_id: uuid.UUID) -> GatewayPaymentInput:
    return GatewayPaymentInput(
        payment_id=payment_id,
        verify_after_seconds=settings.gateway_verify_after.total_seconds(),
        verify_interval_seconds=settings.gateway_verify_interval.total_seconds(),
        verify_max_interval_seconds=settings.gateway_verify_max_interval.total_seconds(),
        verify_attempts=settings.gateway_verify_attempts,
    )


async def create(
    session, user: User, client: Client, settings: Settings, body: GatewayPaymentIn, key: str
) -> tuple[GatewayPaymentOut, bool]:
    """The payment under this caller's Idempotency-Key, made and started (created True), or found again; with its
    checkout URL when the gateway has answered within GATEWAY_CHECKOUT_WAIT."""
    access.gate(user, Entity.gateway_payment, Action.create)
    idempotency_key = f"{user.id}:{key}"
    existing = (
        await session.exec(select(GatewayPayment).where(GatewayPayment.idempotency_key == idempotency_key))
    ).first()
    if existing is not None:
        same = (existing.purpose, existing.loan_id, existing.bill_id) == (body.purpose, body.loan_id, body.bill_id)
        if not same or (body.amount is not None and body.amount != existing.amount):
            raise AppError(409, "idempotency_key_reused", "this Idempotency-Key was used for another payment")
        await session.commit()
        return await _started(session, client, settings, existing), False

    payment_id = uuid.uuid4()
    if body.purpose == GatewayPurpose.loan_repayment:
        loan: Loan = await access.visible(session, user, Entity.loan, body.loan_id)
        if loan.status != "active":
            raise AppError(409, "loan_not_active", f"the loan is {loan.status}: only an active loan is repaid")
        assert body.amount is not None  # the body's validator
        await _check_repayment(session, settings, loan, body.mode, body.amount)
        org_id, payer_id, amount, target = loan.org_id, loan.applicant_id, body.amount, f"loan {loan.id}"
    else:
        bill: Bill = await access.visible(session, user, Entity.bill, body.bill_id, for_update=True)
        org_id, payer_id, amount, target = bill.org_id, bill.payer_id, bill.amount, f"bill to {bill.payee_name}"
        await _hold_bill(session, user, bill, body, payment_id)
    payment = GatewayPayment(
        id=payment_id,
        org_id=org_id,
        payer_id=payer_id,
        created_by=user.id,
        idempotency_key=idempotency_key,
        purpose=body.purpose,
        loan_id=body.loan_id,
        bill_id=body.bill_id,
        amount=amount,
        currency=settings.gateway_currency,
        repayment_mode=body.mode if body.purpose == GatewayPurpose.loan_repayment else None,
        reference=f"gw_{payment_id.hex}",
        status=GatewayStatus.initializing,
        workflow_id=f"gateway-payment-{payment_id}",
    )
    session.add(payment)
    try:
        await session.flush()
    except IntegrityError as exc:  # the same key committed by a concurrent request, or the bill's other checkout
        await session.rollback()
        raise AppError(409, "gateway_payment_conflict", "another payment of this bill or key was just made") from exc
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="gateway_payment.created",
        entity_type="gateway_payment",
        entity_id=payment_id,
        after={"purpose": body.purpose, "target": target, "amount": str(amount), "reference": payment.reference},
    )
    await session.commit()
    return await _started(session, client, settings, payment), True


async def _check_repayment(session, settings: Settings, loan: Loan, mode: str, amount: Decimal) -> None:
    """The repayment's refusals the loan would make today, before the member is charged: paying more than every
    installment left, or a payoff that is not today's quote. (Checked again when the money is in: a refusal then
    leaves the money on the deposit account, said on the payment.)"""
    if mode == "payoff":
        payoff = await quote(session, loan, business_today(settings))
        if amount != payoff.amount:
            raise AppError(409, "payoff_amount_mismatch", f"the payoff today is {payoff.amount}")
    elif mode == "installment":
        owed = sum((i.owed for i in await installment_balances(session, loan.id)), Decimal(0))
        if amount > owed:
            raise AppError(422, "overpayment", f"{amount - owed} more than every installment left: prepay or pay off")


async def _hold_bill(session, user: User, bill: Bill, body: GatewayPaymentIn, payment_id: uuid.UUID) -> None:
    """The bill held (processing, this payment's) while its checkout is open, as auto-pay holds it: no second
    checkout, auto-pay or manual pay races it. A bill with no account to credit cannot be paid in."""
    if bill.status not in DUE_STATUSES:
        raise AppError(
            409,
            "bill_not_payable",
            "a payment of this bill is in flight"
            if bill.status == BillStatus.processing
            else f"the bill is {bill.status}",
            {"status": bill.status},
        )
    if bill.account_id is None:
        raise AppError(422, "bill_has_no_account", "the bill names no account to receive its payment")
    if body.amount is not None and body.amount != bill.amount:
        raise AppError(
            422, "amount_mismatch", f"the bill is {format_usd(bill.amount)}", {"bill_amount": str(bill.amount)}
        )
    before = audit.snapshot(bill, ["status", "payment_id"])
    bill.status, bill.payment_id = BillStatus.processing, payment_id
    session.add(bill)
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="bill.gateway_checkout_opened",
        entity_type="bill",
        entity_id=bill.id,
        before=before,
        after=audit.snapshot(bill, ["status", "payment_id"]),
    )


async def _start(client: Client, settings: Settings, payment: GatewayPayment):
    return await client.start_workflow(
        GatewayPaymentWorkflow.run,
        workflow_input(settings, payment.id),
        id=payment.workflow_id,
        task_queue=queue_for(settings, GatewayPaymentWorkflow),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"Card payment {format_usd(payment.amount)} ({payment.purpose}) {payment.reference}",
        static_details=f"loan {payment.loan_id}" if payment.loan_id else f"bill {payment.bill_id}",
        search_attributes=TypedSearchAttributes([SearchAttributePair(sa.ORG_ID, str(payment.org_id))]),
    )


async def _started(session, client: Client, settings: Settings, payment: GatewayPayment) -> GatewayPaymentOut:
    """The payment's workflow started (again: a crash between the insert and the start) while it is open, and the
    row once the checkout is there or GATEWAY_CHECKOUT_WAIT has passed."""
    if payment.status in OPEN_STATUSES and payment.authorization_url is None:
        handle = await _start(client, settings, payment)
        try:
            await asyncio.wait_for(
                handle.execute_update(GatewayPaymentWorkflow.checkout), settings.gateway_checkout_wait.total_seconds()
            )
        except (TimeoutError, RPCError, WorkflowUpdateFailedError) as exc:  # slow, or ended already: the row says
            log.warning(
                "gateway payment %s: no checkout from its workflow (%r); answered from the row", payment.id, exc
            )
        await session.refresh(payment)
        await session.commit()
    return view(payment)


async def visible(session, user: User, payment_id: uuid.UUID) -> GatewayPayment:
    access.gate(user, Entity.gateway_payment, Action.read)
    return await access.visible(session, user, Entity.gateway_payment, payment_id)


async def listing(
    session,
    user: User,
    page,
    status: GatewayStatus | None,
    purpose: GatewayPurpose | None,
    loan_id: uuid.UUID | None,
    bill_id: uuid.UUID | None,
) -> Page[GatewayPaymentOut]:
    access.gate(user, Entity.gateway_payment, Action.read)
    statement = access.scope(user, Entity.gateway_payment, select(GatewayPayment))
    for column, value in (
        (GatewayPayment.status, status),
        (GatewayPayment.purpose, purpose),
        (GatewayPayment.loan_id, loan_id),
        (GatewayPayment.bill_id, bill_id),
    ):
        if value is not None:
            statement = statement.where(column == value)
    rows, total = await paginate(
        session, statement, page, [col(GatewayPayment.created_at).desc(), col(GatewayPayment.id)]
    )
    return Page(items=[view(row) for row in rows], total=total, limit=page.limit, offset=page.offset)


# --- the gateway's webhook ----------------------------------------------------------------------------------------


class ChargeData(BaseModel):
    reference: Annotated[str, *line_rules(100, 1)]
    amount: int = Field(ge=0, lt=10**15)  # minor units
    currency: Annotated[str, *line_rules(3, 3)]
    status: Annotated[str, *line_rules(20)] = ""


class GatewayWebhook(BaseModel):
    id: Annotated[str, *line_rules(100, 1)]
    event: Annotated[str, *line_rules(40, 1)]
    data: ChargeData


def expected_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()


def check_signature(settings: Settings, body: bytes, signature: str) -> None:
    expected = expected_signature(settings.gateway_secret_key.get_secret_value(), body)
    # As bytes: compare_digest refuses a str with non-ASCII characters (a header decoded as Latin-1).
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "surrogateescape")):
        raise AppError(401, "invalid_signature", "the signature does not match")


def parse_event(body: bytes) -> GatewayWebhook:
    try:
        payload = json.loads(body)
        event = GatewayWebhook.model_validate(payload)
        json.dumps(payload, ensure_ascii=False).encode()  # stored as jsonb: no lone surrogates
        if "\\u0000" in body.decode():
            raise ValueError("the event has a NUL character")
    except (ValueError, ValidationError) as exc:
        raise AppError(400, "bad_event", "the body is not a valid gateway event", str(exc)[:500]) from exc
    return event


async def record_event(session, event: GatewayWebhook, body: bytes) -> tuple[bool, str, GatewayPayment | None]:
    """(recorded now, the event's status, its payment) of the event's row, written once by its id."""
    payment = (
        await session.exec(select(GatewayPayment).where(GatewayPayment.reference == event.data.reference))
    ).first()
    inserted = (
        await session.execute(
            text(
                """INSERT INTO gateway_events (event_id, event_type, reference, payment_id, payload, status)
                   VALUES (:id, :type, :reference, :payment, CAST(:payload AS jsonb), :status)
                   ON CONFLICT (event_id) DO NOTHING RETURNING status"""
            ),
            {
                "id": event.id,
                "type": event.event,
                "reference": event.data.reference,
                "payment": payment.id if payment else None,
                "payload": body.decode(),
                "status": "pending" if payment else "unmatched",
            },
        )
    ).first()
    status = (
        inserted.status
        if inserted is not None
        else (
            await session.execute(text("SELECT status FROM gateway_events WHERE event_id = :id"), {"id": event.id})
        ).scalar_one()
    )
    await session.commit()  # durable before the gateway hears 200; no pooled connection held across Temporal
    return inserted is not None, status, payment


async def hand_over(session, client: Client, settings: Settings, event: GatewayWebhook, payment: GatewayPayment) -> str:
    """Signal-with-start of the payment's workflow with the event (a run that ended is started again for it), if
    Temporal answers in time; the event is marked delivered. Otherwise it stays pending and the gateway is answered
    503, so it delivers again (and a running workflow's verify reconciles the payment meanwhile)."""
    outcome = GatewayOutcome(
        payment_id=payment.id,
        source="webhook",
        status=EVENT_TYPES[event.event],
        amount_minor=event.data.amount,
        currency=event.data.currency,
        event_id=event.id,
    )
    try:
        await asyncio.wait_for(
            client.start_workflow(
                GatewayPaymentWorkflow.run,
                workflow_input(settings, payment.id),
                id=payment.workflow_id,
                task_queue=queue_for(settings, GatewayPaymentWorkflow),
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                start_signal="gateway_event",
                start_signal_args=[outcome],
                static_summary=f"Card payment {format_usd(payment.amount)} ({payment.purpose}) {payment.reference}",
                search_attributes=TypedSearchAttributes([SearchAttributePair(sa.ORG_ID, str(payment.org_id))]),
            ),
            settings.bank_event_handover_timeout.total_seconds(),
        )
    except Exception as exc:
        log.warning("gateway event %s recorded; not handed over (the gateway will deliver again): %r", event.id, exc)
        return "pending"
    await session.execute(text("UPDATE gateway_events SET status = 'delivered' WHERE event_id = :id"), {"id": event.id})
    await session.commit()
    return "delivered"
