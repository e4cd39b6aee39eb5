"""currency: exchange rates, a member's base currency; an index for the insights

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-02 15:00:00

`exchange_rates` caches the provider's rates: one row per base, quote and the provider's update date (`as_of`), so a
fetch of the same update again only refreshes `fetched_at` (ON CONFLICT), and older days stay as history. A rate is
NUMERIC(24,10): the provider's figures have up to 10 significant digits, small (JPY→USD) or large (USD→IDR).
`users.base_currency` is the currency a member's summary and insights are converted to (ISO 4217 shape checked here,
the code itself against the ISO list by the API). The insights aggregate a member's imported lines by date: the
covering index answers them from the index alone (index-only scans) on 100,000 lines.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0041"
down_revision: Union[str, None] = "0040"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "exchange_rates",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("base", sa.String(3), nullable=False),
        sa.Column("quote", sa.String(3), nullable=False),
        sa.Column("rate", sa.Numeric(24, 10), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("fetched_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("base ~ '^[A-Z]{3}$' AND quote ~ '^[A-Z]{3}$'", name="exchange_rates_codes"),
        sa.CheckConstraint("rate > 0", name="exchange_rates_positive"),
        sa.UniqueConstraint("base", "quote", "as_of", name="exchange_rates_once_per_day"),
    )
    op.create_index("exchange_rates_latest", "exchange_rates", ["base", sa.text("as_of DESC")])
    op.add_column("users", sa.Column("base_currency", sa.String(3), nullable=False, server_default="USD"))
    op.create_check_constraint("users_base_currency_shape", "users", "base_currency ~ '^[A-Z]{3}$'")
    op.execute(
        "CREATE INDEX imported_transactions_user_date_cover ON imported_transactions (user_id, posted_on) "
        "INCLUDE (amount, currency, category_key, merchant, external_account_id)"
    )


def downgrade() -> None:
    op.drop_index("imported_transactions_user_date_cover", table_name="imported_transactions")
    op.drop_constraint("users_base_currency_shape", "users")
    op.drop_column("users", "base_currency")
    op.drop_table("exchange_rates")
