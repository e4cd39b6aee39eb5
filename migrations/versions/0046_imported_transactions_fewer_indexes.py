"""imported transactions: two indexes fewer to maintain on every imported line

Revision ID: 0046
Revises: 0045
Create Date: 2026-12-02 15:55:00

`imported_transactions_user_date` is superseded by `imported_transactions_user_date_cover` (0041: the same keys,
more columns included), and `imported_transactions_user_merchant` serves no query (the merchant filter and the text
search are substring matches, which a B-tree cannot answer). Every line an import loads paid for both.
"""

from typing import Sequence, Union

from alembic import op

revision: str = "0046"
down_revision: Union[str, None] = "0045"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.drop_index("imported_transactions_user_date", table_name="imported_transactions")
    op.drop_index("imported_transactions_user_merchant", table_name="imported_transactions")


def downgrade() -> None:
    op.create_index("imported_transactions_user_merchant", "imported_transactions", ["user_id", "merchant"])
    op.create_index("imported_transactions_user_date", "imported_transactions", ["user_id", "posted_on"])
