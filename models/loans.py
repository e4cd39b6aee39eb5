"""Loan products, loans and their installments; approval routing rules, requests and decisions."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, Identity, LargeBinary, Numeric, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from models.base import created_at, money, timestamp, uuid_pk

RATE = Numeric(9, 6)  # an annual rate as a fraction: 0.065000 is 6.5 %


class LoanProduct(SQLModel, table=True):
    __tablename__ = "loan_products"
    __table_args__ = (
        CheckConstraint("amortization IN ('declining_balance','equal_principal','flat')", name="loan_products_method"),
        CheckConstraint("frequency IN ('monthly','biweekly','weekly')", name="loan_products_frequency"),
        CheckConstraint(
            "day_count IN ('actual/365','actual/360','30/360','actual/actual')", name="loan_products_day_count"
        ),
        CheckConstraint("min_term >= 1 AND max_term >= min_term", name="loan_products_terms"),
        CheckConstraint("annual_rate >= 0 AND annual_rate < 1", name="loan_products_rate"),
    )
    id: uuid.UUID = uuid_pk()
    name: str = Field(unique=True, max_length=120)
    annual_rate: Decimal = Field(sa_column=Column(RATE, nullable=False))
    min_term: int  # in periods of the frequency
    max_term: int
    min_amount: Decimal = money()
    max_amount: Decimal = money()
    amortization: str = Field(max_length=24)
    frequency: str = Field(default="monthly", max_length=12)
    day_count: str = Field(default="30/360", max_length=16)
    grace_days: int = 0
    late_fee: Decimal = money()
    active: bool = True
    created_at: datetime = created_at()
    updated_at: datetime | None = timestamp()


class ApprovalRule(SQLModel, table=True):
    """Routing as data: requests whose amount and member type match go through these levels, in order.
    `levels` is a list of {role, quorum, deadline_seconds, reminder_seconds, escalation_role}."""

    __tablename__ = "approval_rules"
    __table_args__ = (CheckConstraint("final_outcome IN ('decline','hold')", name="approval_rules_outcome"),)
    id: uuid.UUID = uuid_pk()
    name: str = Field(unique=True, max_length=120)
    priority: int = 100  # lower first; the first matching rule wins
    min_amount: Decimal = money()
    max_amount: Decimal | None = money(nullable=True)  # None: no upper bound
    member_type: str | None = Field(default=None, max_length=40)  # None: any
    levels: list = Field(sa_column=Column(JSONB, nullable=False))
    final_outcome: str = Field(default="decline", max_length=12)
    active: bool = True
    created_at: datetime = created_at()
    updated_at: datetime | None = timestamp()


class ApprovalStatus(StrEnum):
    open = "open"
    info_requested = "info_requested"
    approved = "approved"
    rejected = "rejected"
    declined = "declined"  # no decision before the last deadline, and the rule says decline
    on_hold = "on_hold"  # no decision before the last deadline, and the rule says hold
    withdrawn = "withdrawn"


class ApprovalRequest(SQLModel, table=True):
    __tablename__ = "approval_requests"
    id: uuid.UUID = uuid_pk()
    subject_type: str = Field(max_length=40)  # loan; later budget changes, large disbursements
    subject_id: uuid.UUID = Field(index=True)
    title: str = Field(max_length=200)
    org_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    amount: Decimal = money()
    applicant_id: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    submitted_by: uuid.UUID = Field(foreign_key="users.id")
    rule_id: uuid.UUID | None = Field(default=None, foreign_key="approval_rules.id")
    levels: list = Field(sa_column=Column(JSONB, nullable=False))  # the rule's levels, as routed
    final_outcome: str = Field(max_length=12)
    status: str = Field(default=ApprovalStatus.open, max_length=20, index=True)
    current_level: int = 1
    # A level is decided in rounds (a new one at escalation and when the applicant answers a request for
    # information); only the current round's decisions count.
    current_round: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    waiting_on_role: str | None = Field(default=None, max_length=32, index=True)
    level_opened_at: datetime | None = timestamp()
    deadline_at: datetime | None = timestamp()
    workflow_id: str = Field(unique=True, max_length=200)
    created_at: datetime = created_at()
    closed_at: datetime | None = timestamp()


class ApprovalDecision(SQLModel, table=True):
    __tablename__ = "approval_decisions"
    __table_args__ = (
        # One vote per person, level and round, whatever retries happen.
        UniqueConstraint("request_id", "level", "round", "approver_id", name="approval_decisions_once"),
        CheckConstraint("decision IN ('approve','reject','request_info')", name="approval_decisions_kind"),
    )
    id: uuid.UUID = uuid_pk()
    request_id: uuid.UUID = Field(foreign_key="approval_requests.id", index=True)
    level: int
    round: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    role: str = Field(max_length=32)
    approver_id: uuid.UUID = Field(foreign_key="users.id")
    decision: str = Field(max_length=16)
    reason: str = Field(default="", max_length=1000)
    at: datetime = created_at()


class LoanStatus(StrEnum):
    submitted = "submitted"
    checking_eligibility = "checking_eligibility"
    credit_check = "credit_check"
    pending_approval = "pending_approval"
    info_requested = "info_requested"
    approved = "approved"
    disbursing = "disbursing"
    active = "active"
    closed = "closed"
    declined = "declined"
    rejected = "rejected"
    on_hold = "on_hold"
    withdrawn = "withdrawn"
    failed = "failed"


class Loan(SQLModel, table=True):
    __tablename__ = "loans"
    __table_args__ = (
        UniqueConstraint("created_by", "idempotency_key", name="loans_idempotency_key"),
        CheckConstraint("amount > 0", name="loans_amount_positive"),
        CheckConstraint("amortization IN ('declining_balance','equal_principal','flat')", name="loans_method"),
        CheckConstraint("frequency IN ('monthly','biweekly','weekly')", name="loans_frequency"),
        CheckConstraint("day_count IN ('actual/365','actual/360','30/360','actual/actual')", name="loans_day_count"),
        CheckConstraint(
            "annual_rate >= 0 AND annual_rate < 1 AND grace_days >= 0 AND late_fee >= 0", name="loans_terms"
        ),
    )
    id: uuid.UUID = uuid_pk()
    org_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    applicant_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    product_id: uuid.UUID = Field(foreign_key="loan_products.id")
    amount: Decimal = money()
    term: int
    purpose: str = Field(default="", max_length=500)
    member_type: str = Field(default="consumer", max_length=40)  # the applicant's, when they applied
    monthly_income: Decimal = money()
    monthly_debt: Decimal = money()
    # The terms the loan was written on, copied from its product at application: changing the product later
    # never changes a written loan (its schedule, agreement, payoff, prepayments and late fees read these).
    annual_rate: Decimal = Field(sa_column=Column(RATE, nullable=False))
    amortization: str = Field(max_length=24)
    frequency: str = Field(max_length=12)
    day_count: str = Field(max_length=16)
    grace_days: int
    late_fee: Decimal = money()
    deposit_account_id: uuid.UUID = Field(foreign_key="ledger_accounts.id")  # disbursed into, repaid from
    loan_account_id: uuid.UUID | None = Field(default=None, foreign_key="ledger_accounts.id")
    # The member's bank account: the loan is paid out to it by an ACH credit and, with auto_debit, each
    # installment is pulled from it by an ACH debit on its due date.
    external_account_id: uuid.UUID | None = Field(default=None, foreign_key="external_accounts.id")
    auto_debit: bool = Field(default=False, sa_column_kwargs={"server_default": "false"})
    # Chosen (and kept) before the payment row is written, in another transaction: no foreign key.
    disbursement_payment_id: uuid.UUID | None = None
    # Arrears, kept by the servicing workflow: days since the oldest unpaid due date, and its aging bucket.
    days_past_due: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    aging_bucket: str | None = Field(default=None, max_length=8, index=True)  # 1-30 | 31-60 | 61-90 | 90+
    status: str = Field(default=LoanStatus.submitted, max_length=24, index=True)
    credit_score: int | None = None
    decline_reason: str | None = Field(default=None, max_length=500)
    status_detail: str | None = Field(default=None, max_length=500)  # why it waits where it is, for operators
    approval_request_id: uuid.UUID | None = Field(default=None, foreign_key="approval_requests.id")
    agreement_pdf: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    first_due_date: date | None = None
    created_by: uuid.UUID = Field(foreign_key="users.id")
    idempotency_key: str = Field(max_length=200)
    request_hash: str = Field(max_length=64)
    workflow_id: str = Field(unique=True, max_length=200)
    created_at: datetime = created_at()
    updated_at: datetime | None = timestamp()
    disbursed_at: datetime | None = timestamp()
    closed_at: datetime | None = timestamp()


class LoanInstallment(SQLModel, table=True):
    __tablename__ = "loan_installments"
    __table_args__ = (UniqueConstraint("loan_id", "number", name="loan_installments_once"),)
    id: uuid.UUID = uuid_pk()
    loan_id: uuid.UUID = Field(foreign_key="loans.id", index=True)
    number: int
    due_date: date
    payment: Decimal = money()
    interest: Decimal = money()
    principal: Decimal = money()
    balance: Decimal = money()
    # What has been paid is not stored here: it is the sum of the allocations (loan_allocations).
    late_fee: Decimal = Field(
        default=Decimal("0.00"), sa_column=Column(Numeric(20, 2), nullable=False, server_default="0")
    )
    paid_at: datetime | None = timestamp()  # when it was last fully paid; None while anything is owed
    late_fee_assessed_at: datetime | None = timestamp()
    auto_debit_payment_id: uuid.UUID | None = None  # set before the payment row exists: no foreign key


class LoanRepayment(SQLModel, table=True):
    """One booked repayment (its journal entry), or the reversal of one (a late return of its auto-debit)."""

    __tablename__ = "loan_repayments"
    __table_args__ = (
        CheckConstraint("mode IN ('installment','prepayment','payoff','reversal')", name="loan_repayments_mode"),
        CheckConstraint("(mode = 'reversal') = (reverses_entry_id IS NOT NULL)", name="loan_repayments_reversal"),
    )
    entry_id: uuid.UUID = Field(foreign_key="journal_entries.id", primary_key=True)
    loan_id: uuid.UUID = Field(foreign_key="loans.id", index=True)
    mode: str = Field(max_length=16)
    amount: Decimal = money()  # negative for a reversal
    payment_id: uuid.UUID | None = None  # the auto-debit it came from
    # A repayment is reversed at most once: the reversal's row names the original entry, uniquely.
    reverses_entry_id: uuid.UUID | None = Field(default=None, foreign_key="journal_entries.id", unique=True)
    created_at: datetime = created_at()


class LoanAllocation(SQLModel, table=True):
    """Where a repayment's money went: per installment and component (fee, interest, principal), written once
    with the repayment and never re-split. A reversal writes the opposite amounts under its own entry."""

    __tablename__ = "loan_allocations"
    __table_args__ = (
        UniqueConstraint("entry_id", "number", "component", name="loan_allocations_once"),
        CheckConstraint("component IN ('fee','interest','principal')", name="loan_allocations_component"),
        CheckConstraint("amount <> 0", name="loan_allocations_amount_nonzero"),
    )
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    loan_id: uuid.UUID = Field(foreign_key="loans.id", index=True)
    # NULL only for what was paid before allocations were stored (carried over by migration 0011).
    entry_id: uuid.UUID | None = Field(default=None, foreign_key="loan_repayments.entry_id")
    number: int  # the installment
    component: str = Field(max_length=12)
    amount: Decimal = money()
    created_at: datetime = created_at()


# Workflow and activity arguments.


class LoanInput(SQLModel):
    loan_id: uuid.UUID
    min_credit_score: int
    max_debt_to_income: Decimal
    servicing: bool = False  # set when continuing as new: the loan is active, only repayments remain
    # The servicing clock: a loan day lasts day_seconds from the epoch (the start of the disbursement day in the
    # business time zone). 86400 in production, where loan days are that zone's calendar days; a fraction of a
    # second in tests and the demo, so months of due dates pass in seconds.
    day_seconds: float = 86400.0
    epoch: datetime | None = None
    business_timezone: str = "UTC"  # the API sets BUSINESS_TIMEZONE; UTC for loans started before it existed
    next_due: int = 1  # the next installment whose due date has not been reached yet
    rounds_per_run: int = 200  # servicing wake-ups (due dates, grace ends, bucket changes) before continuing as new
    # How long after an auto-debit completes the bank can still return it (the ACH late-return window): a loan
    # that an auto-debit closed keeps listening until then, for a return that reopens it.
    late_return_window_seconds: float = 0.0
    late_returns_until: datetime | None = None  # carried across continue-as-new


class ServicingCheck(SQLModel):
    loan_id: uuid.UUID
    as_of: date  # today on the servicing clock
    next_due: int  # installments from this number on are reported when due


class ServicingState(SQLModel):
    status: str
    days_past_due: int
    aging_bucket: str | None
    late_fees_assessed: int  # by this check
    due_numbers: list[int]  # installments due by as_of (numbers >= the asked next_due), in order
    next_due_date: date | None  # of the first installment not due yet
    next_check: date | None  # the next day something changes (a grace period ends, a bucket changes)


class AutoDebitInput(SQLModel):
    loan_id: uuid.UUID
    number: int


class AutoDebitApplied(SQLModel):
    payment_id: uuid.UUID
    loan_id: uuid.UUID
    presentment: int = 1  # a re-presented debit that completes again is another repayment


class AutoDebitReversed(SQLModel):
    loan_id: uuid.UUID
    status: str  # the loan's status after the reversal: a closed loan is active again
    reversed: bool  # False when the debit had not been applied (nothing to undo)


class CreditCheckBlocked(SQLModel):
    loan_id: uuid.UUID
    message: str
    status: int | None = None  # the bureau's HTTP status


class Eligibility(SQLModel):
    eligible: bool
    reason: str | None = None
    debt_to_income: Decimal | None = None


class LoanStatusUpdate(SQLModel):
    loan_id: uuid.UUID
    status: str
    reason: str | None = None
    credit_score: int | None = None


class LoanSummary(SQLModel):
    loan_id: uuid.UUID
    status: str
    amount: Decimal
    applicant_id: uuid.UUID
    org_id: uuid.UUID
    applicant_name: str
    installments: int = 0
    first_payment: Decimal | None = None
    total_interest: Decimal | None = None


class RepaymentInput(SQLModel):
    loan_id: uuid.UUID
    amount: Decimal
    mode: str  # installment | prepayment | payoff
    key: str  # the caller's Idempotency-Key: a retried repayment is one repayment
    paid_by: uuid.UUID
    paid_by_email: str
    payment_id: uuid.UUID | None = None  # the auto-debit it comes from


class RepaymentResult(SQLModel):
    loan_id: uuid.UUID
    amount: Decimal
    principal: Decimal
    interest: Decimal
    fees: Decimal
    outstanding_principal: Decimal
    status: str
    journal_entry_id: uuid.UUID


class PayoffQuote(SQLModel):
    loan_id: uuid.UUID
    as_of: date
    outstanding_principal: Decimal
    due_unpaid: Decimal  # installments already due and not paid, late fees included
    accrued_interest: Decimal
    amount: Decimal
