"""the ledger's balanced-entry check looks each new entry up by index

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 00:00:00

The statement trigger postings_balanced (0001, named in 0012) summed the legs of every entry a statement wrote
with `p.entry_id IN (SELECT DISTINCT entry_id FROM new_postings)`. The planner may run that as a join reading the
whole postings index, every leg of the ledger, once per statement: month-end posting writes one statement per
batch of accounts, so the check grew with the ledger and the run was quadratic (bench/notes/interest_posting.md:
203 s in 101 batches against 7 s for the same postings in one statement). A LATERAL aggregate is never flattened
into a join: each new entry's legs are read through ix_postings_entry_id, whatever the size of the ledger.
Same rule, same error, same name.
"""

from typing import Sequence, Union

from alembic import op

revision: str = "0019"
down_revision: Union[str, None] = "0018"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _check(legs: str) -> str:
    """The function, with `legs` the query that finds the first unbalanced entry among the new postings' entries."""
    return f"""
        CREATE OR REPLACE FUNCTION ledger_check_entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE bad record;
        BEGIN
            {legs}
            IF FOUND THEN
                RAISE EXCEPTION 'journal entry % is unbalanced: % postings summing to %',
                    bad.entry_id, bad.legs, bad.total
                    USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entries_balanced';
            END IF;
            RETURN NULL;
        END $$;
    """


BY_ENTRY = """
            SELECT e.entry_id, t.total, t.legs INTO bad
            FROM (SELECT DISTINCT entry_id FROM new_postings) e
            CROSS JOIN LATERAL (
                SELECT sum(p.amount) AS total, count(*) AS legs FROM postings p WHERE p.entry_id = e.entry_id
            ) t
            WHERE t.total <> 0 OR t.legs < 2
            LIMIT 1;"""

AS_A_JOIN = """
            SELECT p.entry_id, sum(p.amount) AS total, count(*) AS legs INTO bad
            FROM postings p
            WHERE p.entry_id IN (SELECT DISTINCT entry_id FROM new_postings)
            GROUP BY p.entry_id
            HAVING sum(p.amount) <> 0 OR count(*) < 2
            LIMIT 1;"""


def upgrade() -> None:
    op.execute(_check(BY_ENTRY))


def downgrade() -> None:
    op.execute(_check(AS_A_JOIN))
