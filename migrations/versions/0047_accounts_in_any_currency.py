"""accounts in any currency: GL accounts per currency; one currency per journal entry, held by the database

Revision ID: 0047
Revises: 0046
Create Date: 2026-12-02 23:55:00

An internal account holds one ISO 4217 currency, fixed when it opens. The bank's GL accounts (cash, ACH clearing,
interest, fees, loans, gateway clearing) exist once per currency: their code no longer names one account alone,
(code, currency) does. The USD ones are the accounts 0001 created; the others are created with the first account
opened in their currency (core/ledger.ensure_gl_accounts).

Rules, beside the balanced-entry check (0019) in the same statement trigger, so that no path can break them:
* `ledger_entry_one_currency`: every leg of an entry is on accounts of one currency. A sum of euros and dollars
  balancing to zero means nothing; a conversion is two entries, one in each currency, through the FX accounts.
* `ledger_account_currency_fixed`: an account's currency never changes (its postings are amounts in it).
"""

from typing import Sequence, Union

from alembic import op

revision: str = "0047"
down_revision: Union[str, None] = "0046"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _rule(name: str) -> str:
    return f", CONSTRAINT = '{name}'"


ONE_CURRENCY = f"""
    CREATE OR REPLACE FUNCTION ledger_check_entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE bad record;
    BEGIN
        SELECT e.entry_id, t.total, t.legs, t.currencies INTO bad
        FROM (SELECT DISTINCT entry_id FROM new_postings) e
        CROSS JOIN LATERAL (
            SELECT sum(p.amount) AS total, count(*) AS legs, count(DISTINCT a.currency) AS currencies
            FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
            WHERE p.entry_id = e.entry_id
        ) t
        WHERE t.total <> 0 OR t.legs < 2 OR t.currencies > 1
        LIMIT 1;
        IF FOUND AND bad.currencies > 1 THEN
            RAISE EXCEPTION 'journal entry % has legs in % currencies: an entry is in one currency',
                bad.entry_id, bad.currencies
                USING ERRCODE = 'check_violation'{_rule("ledger_entry_one_currency")};
        ELSIF FOUND THEN
            RAISE EXCEPTION 'journal entry % is unbalanced: % postings summing to %',
                bad.entry_id, bad.legs, bad.total
                USING ERRCODE = 'check_violation'{_rule("ledger_entries_balanced")};
        END IF;
        RETURN NULL;
    END $$;
"""

BALANCED_ONLY = f"""
    CREATE OR REPLACE FUNCTION ledger_check_entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE bad record;
    BEGIN
        SELECT e.entry_id, t.total, t.legs INTO bad
        FROM (SELECT DISTINCT entry_id FROM new_postings) e
        CROSS JOIN LATERAL (
            SELECT sum(p.amount) AS total, count(*) AS legs FROM postings p WHERE p.entry_id = e.entry_id
        ) t
        WHERE t.total <> 0 OR t.legs < 2
        LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'journal entry % is unbalanced: % postings summing to %',
                bad.entry_id, bad.legs, bad.total
                USING ERRCODE = 'check_violation'{_rule("ledger_entries_balanced")};
        END IF;
        RETURN NULL;
    END $$;
"""


def upgrade() -> None:
    op.create_check_constraint("ledger_accounts_currency_shape", "ledger_accounts", "currency ~ '^[A-Z]{3}$'")
    op.drop_constraint("ledger_accounts_code_key", "ledger_accounts", type_="unique")
    op.create_unique_constraint("ledger_accounts_code_currency", "ledger_accounts", ["code", "currency"])
    op.execute(ONE_CURRENCY)
    op.execute(f"""
        CREATE FUNCTION ledger_account_currency_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'account % is in %: an account''s currency never changes', OLD.id, OLD.currency
                USING ERRCODE = 'check_violation'{_rule("ledger_account_currency_fixed")};
        END $$;
        CREATE TRIGGER ledger_accounts_currency_fixed BEFORE UPDATE OF currency ON ledger_accounts
            FOR EACH ROW WHEN (OLD.currency IS DISTINCT FROM NEW.currency)
            EXECUTE FUNCTION ledger_account_currency_fixed();
    """)


def downgrade() -> None:
    # The GL accounts of other currencies stay (the ledger is never deleted), so the old unique code cannot come
    # back while they exist: a downgrade past this revision needs a ledger in USD alone.
    op.execute("""
        DROP TRIGGER ledger_accounts_currency_fixed ON ledger_accounts;
        DROP FUNCTION ledger_account_currency_fixed();
    """)
    op.execute(BALANCED_ONLY)
    op.drop_constraint("ledger_accounts_code_currency", "ledger_accounts", type_="unique")
    op.create_unique_constraint("ledger_accounts_code_key", "ledger_accounts", ["code"])
    op.drop_constraint("ledger_accounts_currency_shape", "ledger_accounts", type_="check")
