"""the balanced-entry check looks each leg's currency up by index

Revision ID: 0050
Revises: 0049
Create Date: 2026-12-03 09:10:00

0047 joined each new entry's legs with ledger_accounts for their currencies. Planned on statistics that still say
the ledger is empty (a young database, or tables not analyzed since a large posting), the join became a hash join
over a sequential scan of ledger_accounts, once per new entry: a month-end batch of 10,000 entries on 10,000
accounts spent 5.7 of its 6.4 s in this trigger (bench/notes/interest_posting.md). A scalar subquery is never
turned into a join: each leg's currency is one lookup by primary key, whatever the statistics say. Same rules,
same errors.
"""

from typing import Sequence, Union

from alembic import op

revision: str = "0050"
down_revision: Union[str, None] = "0049"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _rule(name: str) -> str:
    return f", CONSTRAINT = '{name}'"


def _check(currencies: str, source: str) -> str:
    return f"""
    CREATE OR REPLACE FUNCTION ledger_check_entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE bad record;
    BEGIN
        SELECT e.entry_id, t.total, t.legs, t.currencies INTO bad
        FROM (SELECT DISTINCT entry_id FROM new_postings) e
        CROSS JOIN LATERAL (
            SELECT sum(p.amount) AS total, count(*) AS legs, {currencies} AS currencies
            FROM {source}
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


BY_INDEX = _check("count(DISTINCT (SELECT a.currency FROM ledger_accounts a WHERE a.id = p.account_id))", "postings p")
JOINED = _check(  # 0047's
    "count(DISTINCT a.currency)", "postings p JOIN ledger_accounts a ON a.id = p.account_id"
)


def upgrade() -> None:
    op.execute(BY_INDEX)


def downgrade() -> None:
    op.execute(JOINED)
