"""Payments IN through a card/payment gateway (Paystack-style): a member repays a loan or pays a bill at the
gateway's hosted checkout; the gateway's signed webhook, or our verify call when it is late or lost, says whether it
was paid, and the money is posted once (domain/gateway.py, workflows/gateway_payment.py).

Status: initializing (the checkout is being opened at the gateway) -> pending (the member is at the checkout) ->
succeeded (posted: GL gateway clearing debited, the loan's deposit account or the bill's account credited; a loan
repayment applied from there) | failed (declined at the checkout) | abandoned (left unpaid past the verify attempts)
| flagged (the gateway says paid but not the amount or currency we asked: nothing posted, an operator looks)."""

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import CheckConstraint, Index, text
from sqlmodel import Field, SQLModel

from models.base import created_at, jsonb, money, timestamp, uuid_pk
from models.notifications import NotifyUsers

# The gateway's clearing account: debited when a card payment is posted, credited when the gateway settles to the
# bank (outside this system). Created by migration 0031, not by the initial one.
GL_GATEWAY_CLEARING = "GL-GATEWAY-CLEARING"
GL_GATEWAY_CLEARING_NAME = "Card gateway clearing"


class GatewayPurpose(StrEnum):
    loan_repayment = "loan_repayment"
    bill = "bill"


class GatewayStatus(StrEnum):
    initializing = "initializing"
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"
    abandoned = "abandoned"
    flagged = "flagged"


OPEN_STATUSES: frozenset[str] = frozenset({GatewayStatus.initializing, GatewayStatus.pending})
# A payment in these may still be paid: a success the gateway reports after a decline (the member tried another card
# on the same checkout) or after we gave up on it is money received all the same.
POSTABLE_STATUSES: frozenset[str] = frozenset(
    {GatewayStatus.initializing, GatewayStatus.pending, GatewayStatus.abandoned, GatewayStatus.failed}
)


class GatewayPayment(SQLModel, table=True):
    __tablename__ = "gateway_payments"
    __table_args__ = (
        CheckConstraint("amount > 0", name="gateway_payments_amount_positive"),
        CheckConstraint(
            "status IN ('initializing','pending','succeeded','failed','abandoned','flagged')",
            name="gateway_payments_status_valid",
        ),
        CheckConstraint(
            "(purpose = 'loan_repayment' AND loan_id IS NOT NULL AND bill_id IS NULL)"
            " OR (purpose = 'bill' AND bill_id IS NOT NULL AND loan_id IS NULL)",
            name="gateway_payments_purpose_target",
        ),
        # A bill is paid through the gateway once: one checkout open or paid per bill at a time.
        Index(
            "gateway_payments_one_per_bill",
            "bill_id",
            unique=True,
            postgresql_where=text("status IN ('initializing','pending','succeeded')"),
        ),
    )
    id: uuid.UUID = uuid_pk()
    org_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    payer_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    created_by: uuid.UUID = Field(foreign_key="users.id")
    idempotency_key: str = Field(unique=True, max_length=250)
    purpose: str = Field(max_length=20)
    loan_id: uuid.UUID | None = Field(default=None, foreign_key="loans.id", index=True)
    bill_id: uuid.UUID | None = Field(default=None, foreign_key="bills.id")
    amount: Decimal = money()
    currency: str = Field(default="USD", max_length=3)
    repayment_mode: str | None = Field(default=None, max_length=20)  # a loan's: installment, prepayment, payoff
    reference: str = Field(unique=True, max_length=100)  # ours, the gateway's idempotency key for the transaction
    status: str = Field(default=GatewayStatus.initializing, max_length=16)
    access_code: str | None = Field(default=None, max_length=100)
    authorization_url: str | None = Field(default=None, max_length=500)
    confirmed_by: str | None = Field(default=None, max_length=10)  # webhook | verify
    gateway_amount: Decimal | None = money(nullable=True)  # what the gateway said was charged
    gateway_currency: str | None = Field(default=None, max_length=3)
    journal_entry_id: uuid.UUID | None = Field(default=None, foreign_key="journal_entries.id")
    repayment_entry_id: uuid.UUID | None = Field(default=None, foreign_key="journal_entries.id")
    failure: str | None = Field(default=None, max_length=500)
    workflow_id: str = Field(max_length=100)
    created_at: datetime = created_at()
    closed_at: datetime | None = timestamp()


class GatewayEvent(SQLModel, table=True):
    """A webhook the gateway sent us, once per event id however often it is delivered."""

    __tablename__ = "gateway_events"
    __table_args__ = (
        CheckConstraint("status IN ('delivered','pending','unmatched')", name="gateway_events_status_valid"),
    )
    event_id: str = Field(primary_key=True, max_length=100)
    event_type: str = Field(max_length=40)
    reference: str = Field(max_length=100, index=True)
    payment_id: uuid.UUID | None = Field(default=None, foreign_key="gateway_payments.id", index=True)
    payload: dict | None = jsonb()
    status: str = Field(max_length=16)  # delivered to the workflow | pending (Temporal did not answer) | unmatched
    received_at: datetime = created_at()


# Workflow and activity arguments.


class GatewayPaymentInput(BaseModel):
    payment_id: uuid.UUID
    verify_after_seconds: float
    verify_interval_seconds: float
    verify_max_interval_seconds: float
    verify_attempts: int


class Checkout(BaseModel):
    payment_id: uuid.UUID
    status: str
    reference: str
    authorization_url: str | None = None
    access_code: str | None = None
    failure: str | None = None


class GatewayOutcome(BaseModel):
    """What the gateway says of a transaction, from a webhook or a verify call (or that it refused to open it)."""

    payment_id: uuid.UUID
    source: str  # webhook | verify | initialize
    status: str  # success | failed | abandoned | pending
    amount_minor: int | None = None
    currency: str | None = None
    event_id: str | None = None
    failure: str | None = None


class GatewayResult(BaseModel):
    payment_id: uuid.UUID
    status: str
    failure: str | None = None
    journal_entry_id: uuid.UUID | None = None
    apply_to_loan: bool = False  # posted to a loan's deposit account: the repayment is applied next
    notify: NotifyUsers | None = None  # the payer is to be told (failed, abandoned)
