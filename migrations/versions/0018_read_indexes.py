"""read indexes: the list endpoints' pages and the balances they show, without reading whole tables

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 21:00:00

Found by the read benchmark (bench/api_reads.py: EXPLAIN of every statement the list and detail endpoints send,
on 1,000,000 payments):
* `account_balances` summed every posting and every active hold of the whole ledger (a sequential scan of
  postings and holds, then a hash aggregate) before keeping the few accounts asked for: a filter on the view's
  account_id does not reach inside its grouped subqueries. The same view with LATERAL subqueries sums only the
  accounts the outer query keeps, through the account_id indexes. Same columns, same values.
* Newest-first pages of an organization's payments and loans: (org_id, created_at DESC, id) is the lists' own
  order, so a page reads its 50 rows instead of sorting every row of the organization.
"""

from typing import Sequence, Union

from alembic import op

revision: str = "0018"
down_revision: Union[str, None] = "0017"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_BALANCES = """
    CREATE OR REPLACE VIEW account_balances AS
    SELECT a.id AS account_id,
           COALESCE(p.total, 0) * CASE a.normal_balance WHEN 'debit' THEN 1 ELSE -1 END AS ledger_balance,
           COALESCE(h.held, 0) AS held
    FROM ledger_accounts a
    {postings}
    {holds}
"""
_GROUPED = _BALANCES.format(
    postings="LEFT JOIN (SELECT account_id, sum(amount) AS total FROM postings GROUP BY account_id) p "
    "ON p.account_id = a.id",
    holds="LEFT JOIN (SELECT account_id, sum(amount) AS held FROM holds WHERE status = 'active' GROUP BY account_id) h "
    "ON h.account_id = a.id",
)
_LATERAL = _BALANCES.format(
    postings="LEFT JOIN LATERAL (SELECT sum(amount) AS total FROM postings WHERE account_id = a.id) p ON true",
    holds="LEFT JOIN LATERAL (SELECT sum(amount) AS held FROM holds WHERE account_id = a.id AND status = 'active') h "
    "ON true",
)

_INDEXES = {
    "payments_org_newest": ("payments", "org_id, created_at DESC, id"),
    "loans_org_newest": ("loans", "org_id, created_at DESC, id"),
}


def upgrade() -> None:
    op.execute(_LATERAL)
    for name, (table, columns) in _INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON {table} ({columns})")


def downgrade() -> None:
    for name in _INDEXES:
        op.execute(f"DROP INDEX {name}")
    op.execute(_GROUPED)
