"""members' money management: categories, imported transactions, category rules and history, imports, and the
one member_transactions view

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-02 14:40:00

`member_transactions` is the member's one list: the postings of their internal ledger accounts (source 'ledger',
id 'L<posting id>', amount as the member sees it: money in positive, `-posting.amount` since the ledger keeps debits
positive) and the lines imported for their external accounts (source 'csv' or 'linked', id 'I<row id>'). A ledger
posting's category and notes live in `ledger_transaction_tags` (the ledger itself is never edited); an imported
line carries its own. Categories are referenced by key: the predefined ones (user_id NULL) and a member's own.
`dedup_key` makes a re-import of the same lines add nothing (ON CONFLICT DO NOTHING on the unique index).
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0037"
down_revision: Union[str, None] = "0036"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

MONEY = sa.Numeric(20, 2)
TS = sa.DateTime(timezone=True)

PREDEFINED = [
    ("income", "Income", "income"),
    ("salary", "Salary", "income"),
    ("interest", "Interest", "income"),
    ("refunds", "Refunds", "income"),
    ("groceries", "Groceries", "expense"),
    ("dining", "Restaurants and dining", "expense"),
    ("transport", "Transport", "expense"),
    ("fuel", "Fuel", "expense"),
    ("housing", "Rent and mortgage", "expense"),
    ("utilities", "Utilities", "expense"),
    ("shopping", "Shopping", "expense"),
    ("entertainment", "Entertainment", "expense"),
    ("health", "Health", "expense"),
    ("travel", "Travel", "expense"),
    ("education", "Education", "expense"),
    ("subscriptions", "Subscriptions", "expense"),
    ("fees", "Fees and charges", "expense"),
    ("loans", "Loans", "transfer"),
    ("transfers", "Transfers", "transfer"),
    ("savings", "Savings", "transfer"),
    ("uncategorized", "Uncategorized", "expense"),
]

VIEW = """
CREATE VIEW member_transactions AS
SELECT 'L' || p.id::text AS txn_id,
       'ledger'::varchar(16) AS source,
       a.owner_id AS user_id,
       a.org_id AS org_id,
       a.id AS account_id,
       NULL::uuid AS external_account_id,
       je.effective_date AS posted_on,
       -p.amount AS amount,
       a.currency AS currency,
       NULL::varchar(200) AS merchant,
       je.description::varchar(500) AS description,
       COALESCE(t.category_key, CASE je.entry_type
           WHEN 'interest_posting' THEN 'interest'
           WHEN 'book_transfer' THEN 'transfers'
           WHEN 'loan_disbursement' THEN 'loans'
           ELSE 'uncategorized' END)::varchar(40) AS category_key,
       COALESCE(t.category_source, 'default')::varchar(16) AS category_source,
       t.notes AS notes,
       je.created_at AS created_at
  FROM postings p
  JOIN ledger_accounts a ON a.id = p.account_id AND a.owner_id IS NOT NULL AND a.kind = 'internal'
  JOIN journal_entries je ON je.id = p.entry_id
  LEFT JOIN ledger_transaction_tags t ON t.posting_id = p.id
UNION ALL
SELECT 'I' || i.id::text, i.source, i.user_id, i.org_id, NULL::uuid, i.external_account_id, i.posted_on, i.amount,
       i.currency, i.merchant, i.description, i.category_key, i.category_source, i.notes, i.created_at
  FROM imported_transactions i
"""


def upgrade() -> None:
    op.create_table(
        "categories",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("kind IN ('income', 'expense', 'transfer')", name="categories_kind"),
        sa.CheckConstraint("key ~ '^[a-z][a-z0-9_]{0,39}$'", name="categories_key_shape"),
    )
    op.create_index(
        "categories_predefined_key", "categories", ["key"], unique=True, postgresql_where=sa.text("user_id IS NULL")
    )
    op.create_index(
        "categories_member_key",
        "categories",
        ["user_id", "key"],
        unique=True,
        postgresql_where=sa.text("user_id IS NOT NULL"),
    )
    op.execute(
        "INSERT INTO categories (id, key, name, kind) VALUES "
        + ", ".join(f"(gen_random_uuid(), '{k}', '{n}', '{kind}')" for k, n, kind in PREDEFINED)
    )

    op.create_table(
        "category_rules",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("org_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False, index=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True, index=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(16), nullable=False),
        sa.Column("match", sa.String(16), nullable=False),
        sa.Column("pattern", sa.String(200), nullable=False),
        sa.Column("min_amount", MONEY, nullable=True),
        sa.Column("max_amount", MONEY, nullable=True),
        sa.Column("category_key", sa.String(40), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=True),
        sa.CheckConstraint("field IN ('merchant', 'description', 'any')", name="category_rules_field"),
        sa.CheckConstraint("match IN ('keyword', 'regex')", name="category_rules_match"),
        sa.CheckConstraint(
            "min_amount IS NULL OR max_amount IS NULL OR min_amount <= max_amount", name="category_rules_amount_range"
        ),
    )

    op.create_table(
        "transaction_imports",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("org_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False, index=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("external_account_id", sa.Uuid(), sa.ForeignKey("external_accounts.id"), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("filename", sa.String(200), nullable=True),
        sa.Column("storage_key", sa.String(300), nullable=True),
        sa.Column("workflow_id", sa.String(200), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="running"),
        sa.Column("rows_read", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("rows_loaded", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("rows_duplicate", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("rows_rejected", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("cursor", sa.String(200), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("created_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", TS, nullable=True),
        sa.CheckConstraint("source IN ('csv', 'linked')", name="transaction_imports_source"),
        sa.CheckConstraint("status IN ('running', 'completed', 'failed')", name="transaction_imports_status"),
    )
    op.create_table(
        "import_rejections",
        sa.Column("import_id", sa.Uuid(), sa.ForeignKey("transaction_imports.id"), primary_key=True),
        sa.Column("line_no", sa.BigInteger(), primary_key=True),
        sa.Column("reason", sa.String(300), nullable=False),
    )

    op.create_table(
        "imported_transactions",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("org_id", sa.Uuid(), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("external_account_id", sa.Uuid(), sa.ForeignKey("external_accounts.id"), nullable=True),
        sa.Column("import_id", sa.Uuid(), sa.ForeignKey("transaction_imports.id"), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("posted_on", sa.Date(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False, server_default="USD"),
        sa.Column("merchant", sa.String(200), nullable=True),
        sa.Column("description", sa.String(500), nullable=False, server_default=""),
        sa.Column("category_key", sa.String(40), nullable=False, server_default="uncategorized"),
        sa.Column("category_source", sa.String(16), nullable=False, server_default="default"),
        sa.Column("category_rule_id", sa.Uuid(), sa.ForeignKey("category_rules.id"), nullable=True),
        sa.Column("notes", sa.String(1000), nullable=True),
        sa.Column("dedup_key", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("source IN ('csv', 'linked')", name="imported_transactions_source"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="imported_transactions_currency"),
        sa.CheckConstraint(
            "category_source IN ('default', 'rule', 'manual', 'provider')", name="imported_transactions_category_source"
        ),
    )
    op.create_index("imported_transactions_dedup", "imported_transactions", ["user_id", "dedup_key"], unique=True)
    op.create_index("imported_transactions_user_date", "imported_transactions", ["user_id", "posted_on"])
    op.create_index("imported_transactions_user_category", "imported_transactions", ["user_id", "category_key"])
    op.create_index("imported_transactions_user_merchant", "imported_transactions", ["user_id", "merchant"])
    op.create_index("imported_transactions_import", "imported_transactions", ["import_id"])

    op.create_table(
        "ledger_transaction_tags",
        sa.Column("posting_id", sa.BigInteger(), sa.ForeignKey("postings.id"), primary_key=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("category_key", sa.String(40), nullable=True),
        sa.Column("category_source", sa.String(16), nullable=True),
        sa.Column("category_rule_id", sa.Uuid(), sa.ForeignKey("category_rules.id"), nullable=True),
        sa.Column("notes", sa.String(1000), nullable=True),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(
            "category_source IS NULL OR category_source IN ('default', 'rule', 'manual')",
            name="ledger_transaction_tags_category_source",
        ),
    )

    op.create_table(
        "transaction_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("txn_id", sa.String(24), nullable=False),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("field", sa.String(16), nullable=False),
        sa.Column("old_value", sa.String(1000), nullable=True),
        sa.Column("new_value", sa.String(1000), nullable=True),
        sa.Column("changed_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("rule_id", sa.Uuid(), sa.ForeignKey("category_rules.id"), nullable=True),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("details", JSONB, nullable=True),
        sa.Column("changed_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("field IN ('category', 'notes')", name="transaction_changes_field"),
    )
    op.create_index("transaction_changes_txn", "transaction_changes", ["txn_id", "id"])
    op.execute(VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW member_transactions")
    op.drop_table("transaction_changes")
    op.drop_table("ledger_transaction_tags")
    op.drop_table("imported_transactions")
    op.drop_table("import_rejections")
    op.drop_table("transaction_imports")
    op.drop_table("category_rules")
    op.drop_table("categories")
