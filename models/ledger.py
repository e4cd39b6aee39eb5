"""Double-entry ledger. A posting's amount is signed: debit positive, credit negative; the postings of a
journal entry sum to zero, which the database itself enforces (see the initial migration)."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Identity, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.base import created_at, money, timestamp, uuid_pk


class AccountKind(StrEnum):
    internal = "internal"  # a member's or an organization's account
    gl = "gl"  # general ledger: the institution's own books


class InternalAccountType(StrEnum):
    checking = "checking"
    savings = "savings"
    loan = "loan"


class AccountStatus(StrEnum):
    active = "active"
    closed = "closed"


class NormalBalance(StrEnum):
    debit = "debit"  # assets, expenses, loans receivable
    credit = "credit"  # deposits (liabilities), income


class LedgerAccount(SQLModel, table=True):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint("kind IN ('internal','gl')", name="ledger_accounts_kind_valid"),
        CheckConstraint("normal_balance IN ('debit','credit')", name="ledger_accounts_normal_valid"),
        CheckConstraint("status IN ('active','closed')", name="ledger_accounts_status_valid"),
        CheckConstraint("kind = 'gl' OR type IN ('checking','savings','loan')", name="ledger_accounts_type_valid"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="ledger_accounts_currency_shape"),
        # A GL account is one code in one currency (migration 0047); internal accounts have no code.
        UniqueConstraint("code", "currency", name="ledger_accounts_code_currency"),
        # The few closed accounts, for the ledger's open-account check (migration 0017).
        Index("ledger_accounts_not_active", "id", postgresql_where=text("status <> 'active'")),
    )
    id: uuid.UUID = uuid_pk()
    code: str | None = Field(default=None, max_length=40)  # GL accounts: e.g. GL-CASH, one per currency
    name: str = Field(max_length=200)
    kind: str = Field(max_length=16)
    type: str = Field(max_length=32)
    normal_balance: str = Field(max_length=8)
    currency: str = Field(default="USD", max_length=3)  # ISO 4217, fixed when the account opens
    org_id: uuid.UUID | None = Field(default=None, foreign_key="organizations.id", index=True)
    owner_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", index=True)
    status: str = Field(default=AccountStatus.active, max_length=16)
    created_at: datetime = created_at()
    closed_at: datetime | None = timestamp()


class JournalEntry(SQLModel, table=True):
    __tablename__ = "journal_entries"
    id: uuid.UUID = uuid_pk()
    # A retry or a replay of the activity that writes an entry finds it by this key instead of writing twice.
    idempotency_key: str = Field(unique=True, max_length=200)
    entry_type: str = Field(max_length=40)
    description: str = Field(max_length=500)
    effective_date: date
    payment_id: uuid.UUID | None = Field(default=None, index=True)
    created_at: datetime = created_at()


class Posting(SQLModel, table=True):
    __tablename__ = "postings"
    __table_args__ = (CheckConstraint("amount <> 0", name="postings_amount_nonzero"),)
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    entry_id: uuid.UUID = Field(sa_column=Column(ForeignKey("journal_entries.id"), nullable=False, index=True))
    account_id: uuid.UUID = Field(sa_column=Column(ForeignKey("ledger_accounts.id"), nullable=False, index=True))
    amount: Decimal = money()


class HoldStatus(StrEnum):
    active = "active"
    released = "released"
    captured = "captured"


class Hold(SQLModel, table=True):
    """Funds set aside on an account: they lower the available balance, not the ledger balance."""

    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="holds_amount_positive"),
        CheckConstraint("status IN ('active','released','captured')", name="holds_status_valid"),
    )
    id: uuid.UUID = uuid_pk()
    account_id: uuid.UUID = Field(foreign_key="ledger_accounts.id", index=True)
    amount: Decimal = money()
    reason: str = Field(max_length=200)
    idempotency_key: str = Field(unique=True, max_length=200)
    status: str = Field(default=HoldStatus.active, max_length=16)
    # Who placed a hold by hand (POST /accounts/{id}/holds); null for the holds a payment's workflow places and
    # releases itself (a credit's funds, a debit's availability), which are never released by hand.
    placed_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = created_at()
    released_at: datetime | None = timestamp()


# GL accounts: the initial migration created them in USD, core/ledger.ensure_gl_accounts creates them in another
# currency with its first account. (code, currency) is a stable identifier used by the code.
GL_CASH = "GL-CASH"
GL_ACH_CLEARING = "GL-ACH-CLEARING"
GL_INTEREST_EXPENSE = "GL-INTEREST-EXPENSE"
GL_INTEREST_INCOME = "GL-INTEREST-INCOME"
GL_FEE_INCOME = "GL-FEE-INCOME"
GL_LOAN_RECEIVABLE = "GL-LOAN-RECEIVABLE"

GL_ACCOUNTS = [
    (GL_CASH, "Cash at bank", "asset", "debit"),
    (GL_ACH_CLEARING, "ACH clearing", "asset", "debit"),
    (GL_INTEREST_EXPENSE, "Interest expense", "expense", "debit"),
    (GL_INTEREST_INCOME, "Interest income", "income", "credit"),
    (GL_FEE_INCOME, "Fee income", "income", "credit"),
    (GL_LOAN_RECEIVABLE, "Loans receivable", "asset", "debit"),
]
