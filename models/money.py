"""Members' money management (migration 0037): categories, category rules, imports with their rejected lines, the
imported lines themselves, the tags (category, notes) on a member's ledger postings and the history of every
category or notes change. `member_transactions` (a view, read with `MEMBER_TRANSACTIONS`) is the member's one list
of both kinds; its `txn_id` is 'L<posting id>' or 'I<imported row id>'."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from models.base import created_at, money, timestamp, uuid_pk


class CategoryKind(StrEnum):
    income = "income"
    expense = "expense"
    transfer = "transfer"


class CategorySource(StrEnum):
    default = "default"  # nothing matched: the predefined default
    rule = "rule"  # a category rule set it (category_rule_id says which)
    manual = "manual"  # a person set it (transaction_changes says who)
    provider = "provider"  # the account-linking provider's own category


class ImportSource(StrEnum):
    csv = "csv"
    linked = "linked"


class ImportStatus(StrEnum):
    running = "running"
    completed = "completed"
    failed = "failed"


class Category(SQLModel, table=True):
    __tablename__ = "categories"
    id: uuid.UUID = uuid_pk()
    key: str = Field(max_length=40)
    name: str = Field(max_length=100)
    kind: str = Field(max_length=16)
    user_id: uuid.UUID | None = Field(default=None, foreign_key="users.id")  # NULL: predefined
    created_at: datetime = created_at()


class CategoryRule(SQLModel, table=True):
    __tablename__ = "category_rules"
    id: uuid.UUID = uuid_pk()
    org_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    user_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", index=True)  # NULL: the org's rule
    priority: int  # lower first; a member's rule before the org's at the same priority
    field: str = Field(max_length=16)  # merchant | description | any
    match: str = Field(max_length=16)  # keyword | regex
    pattern: str = Field(max_length=200)
    min_amount: Decimal | None = money(nullable=True)  # on the absolute amount
    max_amount: Decimal | None = money(nullable=True)
    category_key: str = Field(max_length=40)
    active: bool = True
    created_by: uuid.UUID = Field(foreign_key="users.id")
    created_at: datetime = created_at()
    updated_at: datetime | None = timestamp()


class TransactionImport(SQLModel, table=True):
    __tablename__ = "transaction_imports"
    id: uuid.UUID = uuid_pk()
    org_id: uuid.UUID = Field(foreign_key="organizations.id", index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)  # whose transactions these are
    external_account_id: uuid.UUID = Field(foreign_key="external_accounts.id")
    source: str = Field(max_length=16)
    filename: str | None = Field(default=None, max_length=200)
    storage_key: str | None = Field(default=None, max_length=300)
    workflow_id: str = Field(unique=True, max_length=200)
    status: str = Field(default=ImportStatus.running, max_length=16)
    rows_read: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    rows_loaded: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    rows_duplicate: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    rows_rejected: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    cursor: str | None = Field(default=None, max_length=200)  # the linking provider's sync cursor
    error: str | None = Field(default=None, max_length=500)
    created_by: uuid.UUID = Field(foreign_key="users.id")
    created_at: datetime = created_at()
    finished_at: datetime | None = timestamp()
    # migration 0044: the requester's Idempotency-Key, the sealed upload, and where the next chunk starts
    idempotency_key: str | None = Field(default=None, unique=True, max_length=250)
    key_id: str | None = Field(default=None, max_length=32)
    size_bytes: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    segments: int | None = None
    segment_bytes: int | None = None
    next_offset: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    next_line: int = Field(default=1, sa_column=Column(BigInteger, nullable=False, server_default="1"))


class ImportTupleCount(SQLModel, table=True):
    """How often an identical line (its hash) is in one chunk of an import, the chunk from `first_line` on
    (migrations 0044, 0049)."""

    __tablename__ = "import_tuple_counts"
    import_id: uuid.UUID = Field(primary_key=True)  # no foreign key: a work table, emptied when its import ends
    tuple_hash: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    first_line: int = Field(sa_column=Column(BigInteger, primary_key=True))
    seen: int = Field(sa_column=Column(BigInteger, nullable=False))


class ImportCountSet(SQLModel, table=True):
    """A chunk's set of counts (migration 0049): written ahead or by the chunk, counted for the chunks after it only
    once the chunk's own transaction marks it committed."""

    __tablename__ = "import_count_sets"
    import_id: uuid.UUID = Field(foreign_key="transaction_imports.id", primary_key=True)
    first_line: int = Field(sa_column=Column(BigInteger, primary_key=True))
    lines: int = Field(sa_column=Column(BigInteger, nullable=False))
    committed: bool = False


class ImportRejection(SQLModel, table=True):
    __tablename__ = "import_rejections"
    import_id: uuid.UUID = Field(foreign_key="transaction_imports.id", primary_key=True)
    line_no: int = Field(sa_column=Column(BigInteger, primary_key=True))
    reason: str = Field(max_length=300)


class ImportedTransaction(SQLModel, table=True):
    __tablename__ = "imported_transactions"
    # The line's import vouches for its member, organization and account: a trigger checks it once a statement (the
    # foreign key of migration 0048, checked once a line, became migration 0051's triggers), so no key is declared.
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    org_id: uuid.UUID
    user_id: uuid.UUID
    external_account_id: uuid.UUID
    import_id: uuid.UUID
    source: str = Field(max_length=16)
    posted_on: date
    amount: Decimal = money()  # money in positive, out negative
    currency: str = Field(default="USD", max_length=3)
    merchant: str | None = Field(default=None, max_length=200)
    description: str = Field(default="", max_length=500)
    category_key: str = Field(default="uncategorized", max_length=40)
    category_source: str = Field(default=CategorySource.default, max_length=16)
    category_rule_id: uuid.UUID | None = Field(default=None, foreign_key="category_rules.id")
    notes: str | None = Field(default=None, max_length=1000)
    dedup_key: str = Field(max_length=64)
    created_at: datetime = created_at()


class LedgerTransactionTag(SQLModel, table=True):
    __tablename__ = "ledger_transaction_tags"
    posting_id: int = Field(sa_column=Column(BigInteger, ForeignKey("postings.id"), primary_key=True))
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    category_key: str | None = Field(default=None, max_length=40)
    category_source: str | None = Field(default=None, max_length=16)
    category_rule_id: uuid.UUID | None = Field(default=None, foreign_key="category_rules.id")
    notes: str | None = Field(default=None, max_length=1000)
    updated_at: datetime = created_at()


class TransactionChange(SQLModel, table=True):
    """One row per change of a transaction's category or notes: who (changed_by) or what (rule_id) and why."""

    __tablename__ = "transaction_changes"
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    txn_id: str = Field(max_length=24)
    user_id: uuid.UUID = Field(foreign_key="users.id")  # the transaction's member
    field: str = Field(max_length=16)  # category | notes
    old_value: str | None = Field(default=None, max_length=1000)
    new_value: str | None = Field(default=None, max_length=1000)
    changed_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    rule_id: uuid.UUID | None = Field(default=None, foreign_key="category_rules.id")
    reason: str = Field(max_length=40)  # manual | rule_on_import | rules_reapplied | bulk_recategorise
    details: dict | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    changed_at: datetime = created_at()


# The view (not a table: SQLModel.metadata must not create it), for typed reads with SQLAlchemy Core.
MEMBER_TRANSACTIONS = Table(
    "member_transactions",
    MetaData(),
    Column("txn_id", String),
    Column("source", String),
    Column("user_id", Uuid),
    Column("org_id", Uuid),
    Column("account_id", Uuid),
    Column("external_account_id", Uuid),
    Column("posted_on", Date),
    Column("amount", Numeric(20, 2)),
    Column("currency", String),
    Column("merchant", String),
    Column("description", String),
    Column("category_key", String),
    Column("category_source", String),
    Column("notes", String),
    Column("created_at", DateTime(timezone=True)),
)


class ShareWhat(StrEnum):
    transactions = "transactions"
    budgets = "budgets"


class ShareAccess(StrEnum):
    read = "read"
    edit = "edit"


class ShareScope(StrEnum):
    all = "all"
    expenses = "expenses"  # amount < 0
    income = "income"  # amount > 0
    categories = "categories"  # category_key in category_keys


class MoneyShare(SQLModel, table=True):
    """A member's records or budgets shared with another member of the organization (core/access.money_rows)."""

    __tablename__ = "money_shares"
    id: uuid.UUID = uuid_pk()
    org_id: uuid.UUID = Field(foreign_key="organizations.id")
    owner_id: uuid.UUID = Field(foreign_key="users.id")
    grantee_id: uuid.UUID = Field(foreign_key="users.id")
    what: str = Field(max_length=16)
    access: str = Field(max_length=8)
    scope: str = Field(default=ShareScope.all, max_length=16)
    category_keys: list[str] | None = Field(default=None, sa_column=Column(ARRAY(String(40)), nullable=True))
    created_at: datetime = created_at()
    revoked_at: datetime | None = timestamp()
