"""imported lines: their import checked once a statement, not once a line

Revision ID: 0051
Revises: 0050
Create Date: 2026-12-03 20:40:00

0048's foreign key from a line to its import (import, member, organization, account) is checked by Postgres once a
line: 50,000 look-ups of the same import row, each locking it FOR KEY SHARE, 0.4–0.5 s of a 50,000-line chunk's
~2.5 s INSERT (bench/README.md, Transaction imports). Postgres has no statement-level foreign key, so the same rule
is written as triggers, as the ledger's balanced-entry check is (a statement trigger over the new rows):

- after each INSERT statement into `imported_transactions`, its distinct imports are locked FOR KEY SHARE (as the
  foreign key locks them, so that none can go while the statement's transaction is open) and every distinct
  (import, member, organization, account) of the new lines must be an import's: one look-up an import, not a line;
- a line's import, member, organization and account never change (no code changes them; the foreign key would have
  checked a change against the import);
- an import is never deleted (nor truncated) and its owner never changes: it is the record of an upload, and its
  lines need it. Stricter than the foreign key (which let an import without lines go), and so free of the race a
  trigger on the parent side would have with a load under way: there is no delete to race.

The errors are the foreign key's: SQLSTATE 23503 (foreign_key_violation) and the constraint's name
`imported_transactions_import_owner`. The downgrade restores the foreign key."""

from typing import Sequence, Union

from alembic import op

revision: str = "0051"
down_revision: Union[str, None] = "0050"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

RULE = "imported_transactions_import_owner"
OWNER = "import_id, user_id, org_id, external_account_id"


def upgrade() -> None:
    op.drop_constraint(RULE, "imported_transactions", type_="foreignkey")
    op.execute(f"""
        CREATE FUNCTION imported_lines_check_import() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE bad record;
        BEGIN
            PERFORM 1 FROM transaction_imports i
              WHERE i.id IN (SELECT DISTINCT import_id FROM new_lines)
              ORDER BY i.id
              FOR KEY SHARE OF i;
            SELECT n.import_id, n.user_id INTO bad
              FROM (SELECT DISTINCT {OWNER} FROM new_lines) n
             WHERE NOT EXISTS (SELECT 1 FROM transaction_imports i
                                WHERE i.id = n.import_id AND i.user_id = n.user_id AND i.org_id = n.org_id
                                  AND i.external_account_id = n.external_account_id)
             LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'imported lines name import % for member %, which is no import of that member, '
                                'organization and account', bad.import_id, bad.user_id
                    USING ERRCODE = 'foreign_key_violation', CONSTRAINT = '{RULE}';
            END IF;
            RETURN NULL;
        END $$;

        CREATE TRIGGER imported_lines_have_their_import
            AFTER INSERT ON imported_transactions
            REFERENCING NEW TABLE AS new_lines
            FOR EACH STATEMENT EXECUTE FUNCTION imported_lines_check_import();

        CREATE FUNCTION imported_lines_keep_their_import() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'imported line %: its import, member, organization and account never change', OLD.id
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = '{RULE}';
        END $$;

        CREATE TRIGGER imported_lines_owner_fixed
            BEFORE UPDATE ON imported_transactions
            FOR EACH ROW
            WHEN ((OLD.import_id, OLD.user_id, OLD.org_id, OLD.external_account_id)
                  IS DISTINCT FROM (NEW.import_id, NEW.user_id, NEW.org_id, NEW.external_account_id))
            EXECUTE FUNCTION imported_lines_keep_their_import();

        CREATE FUNCTION transaction_imports_kept() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'an import is never deleted (nor truncated), nor its member, organization or account changed'
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = '{RULE}';
        END $$;

        CREATE TRIGGER transaction_imports_no_delete
            BEFORE DELETE ON transaction_imports
            FOR EACH ROW EXECUTE FUNCTION transaction_imports_kept();

        CREATE TRIGGER transaction_imports_no_truncate
            BEFORE TRUNCATE ON transaction_imports
            FOR EACH STATEMENT EXECUTE FUNCTION transaction_imports_kept();

        CREATE TRIGGER transaction_imports_owner_fixed
            BEFORE UPDATE ON transaction_imports
            FOR EACH ROW
            WHEN ((OLD.id, OLD.user_id, OLD.org_id, OLD.external_account_id)
                  IS DISTINCT FROM (NEW.id, NEW.user_id, NEW.org_id, NEW.external_account_id))
            EXECUTE FUNCTION transaction_imports_kept();
    """)


def downgrade() -> None:
    op.execute("""
        DROP TRIGGER transaction_imports_owner_fixed ON transaction_imports;
        DROP TRIGGER transaction_imports_no_truncate ON transaction_imports;
        DROP TRIGGER transaction_imports_no_delete ON transaction_imports;
        DROP FUNCTION transaction_imports_kept();
        DROP TRIGGER imported_lines_owner_fixed ON imported_transactions;
        DROP FUNCTION imported_lines_keep_their_import();
        DROP TRIGGER imported_lines_have_their_import ON imported_transactions;
        DROP FUNCTION imported_lines_check_import();
    """)
    op.create_foreign_key(
        RULE,
        "imported_transactions",
        "transaction_imports",
        ["import_id", "user_id", "org_id", "external_account_id"],
        ["id", "user_id", "org_id", "external_account_id"],
    )
