"""imported transactions: one foreign key to their import, which vouches for the member, organization and account

Revision ID: 0048
Revises: 0047
Create Date: 2026-12-03 04:45:00

An imported line named its organization, member, external account and import, each with a foreign key of its own:
four look-ups a line, a third of a 50,000-line chunk's INSERT (bench/README.md, Transaction imports). The import row
already references the same organization, member and account, so one composite foreign key from the line to its
import, on all four columns, says as much with one look-up: the line's owner, organization and account are those of
an import that exists, and (through the import's own foreign keys) exist too. It needs every line to have its import
and account, which every loader gives (CSV and the provider's feed); lines that somehow lack an import get one per
member and account (`import-legacy-...`, completed). The downgrade restores the four keys."""

from typing import Sequence, Union

from alembic import op

revision: str = "0048"
down_revision: Union[str, None] = "0047"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

SINGLE_KEYS = {
    "imported_transactions_org_id_fkey": ("org_id", "organizations"),
    "imported_transactions_user_id_fkey": ("user_id", "users"),
    "imported_transactions_external_account_id_fkey": ("external_account_id", "external_accounts"),
    "imported_transactions_import_id_fkey": ("import_id", "transaction_imports"),
}


def upgrade() -> None:
    op.execute("""
        DO $$ BEGIN
          IF EXISTS (SELECT 1 FROM imported_transactions WHERE external_account_id IS NULL)
             OR EXISTS (SELECT 1 FROM transaction_imports WHERE external_account_id IS NULL) THEN
            RAISE EXCEPTION 'imported lines or imports without an external account: no loader makes them; '
                            'give them their account before upgrading';
          END IF;
        END $$
    """)
    op.execute("""
        INSERT INTO transaction_imports (id, org_id, user_id, external_account_id, source, workflow_id, status,
                                         created_by, finished_at)
        SELECT gen_random_uuid(), org_id, user_id, external_account_id, 'csv', 'import-legacy-' || gen_random_uuid(),
               'completed', user_id, now()
          FROM (SELECT DISTINCT org_id, user_id, external_account_id
                  FROM imported_transactions WHERE import_id IS NULL) orphans
    """)
    op.execute("""
        UPDATE imported_transactions t SET import_id = i.id
          FROM transaction_imports i
         WHERE t.import_id IS NULL AND i.workflow_id LIKE 'import-legacy-%'
           AND (i.org_id, i.user_id, i.external_account_id) = (t.org_id, t.user_id, t.external_account_id)
    """)
    op.alter_column("transaction_imports", "external_account_id", nullable=False)
    op.create_unique_constraint(
        "transaction_imports_owner", "transaction_imports", ["id", "user_id", "org_id", "external_account_id"]
    )
    op.alter_column("imported_transactions", "import_id", nullable=False)
    op.alter_column("imported_transactions", "external_account_id", nullable=False)
    for name in SINGLE_KEYS:
        op.drop_constraint(name, "imported_transactions", type_="foreignkey")
    op.create_foreign_key(
        "imported_transactions_import_owner",
        "imported_transactions",
        "transaction_imports",
        ["import_id", "user_id", "org_id", "external_account_id"],
        ["id", "user_id", "org_id", "external_account_id"],
    )


def downgrade() -> None:
    op.drop_constraint("imported_transactions_import_owner", "imported_transactions", type_="foreignkey")
    for name, (column, table) in SINGLE_KEYS.items():
        op.create_foreign_key(name, "imported_transactions", table, [column], ["id"])
    op.alter_column("imported_transactions", "external_account_id", nullable=True)
    op.alter_column("imported_transactions", "import_id", nullable=True)
    op.drop_constraint("transaction_imports_owner", "transaction_imports", type_="unique")
    op.alter_column("transaction_imports", "external_account_id", nullable=True)
