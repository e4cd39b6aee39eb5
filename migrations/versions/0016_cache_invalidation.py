"""cache invalidation: the tables the reference-data cache keeps notify every process when a row changes

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 20:30:00

Each API and worker process keeps the signed-in user, loan and savings products and approval rules in memory
(core/cache) and LISTENs on the channel `backoffice_cache`. A trigger on each of those tables sends
`pg_notify('backoffice_cache', '<table>:<id>')` for every row inserted, updated or deleted, and `'<table>'` for a
TRUNCATE: a trigger, so that no write can forget it (the API, an activity, a migration, a psql session), and inside
the writing transaction, so that the notification goes out at its commit and never for a rollback. Postgres sends
one notification per distinct payload per transaction.
"""

from typing import Sequence, Union

from alembic import op

revision: str = "0016"
down_revision: Union[str, None] = "0015"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_CACHED = ("users", "loan_products", "savings_products", "approval_rules")


def upgrade() -> None:
    op.execute("""
        CREATE FUNCTION cache_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('backoffice_cache',
                TG_TABLE_NAME || ':' || (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END)::text);
            RETURN NULL;
        END $$;
        CREATE FUNCTION cache_table_emptied() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('backoffice_cache', TG_TABLE_NAME);
            RETURN NULL;
        END $$;
    """)
    for table in _CACHED:
        op.execute(f"""
            CREATE TRIGGER {table}_cache_row_changed AFTER INSERT OR UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION cache_row_changed();
            CREATE TRIGGER {table}_cache_table_emptied AFTER TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION cache_table_emptied();
        """)


def downgrade() -> None:
    for table in _CACHED:
        op.execute(f"""
            DROP TRIGGER {table}_cache_table_emptied ON {table};
            DROP TRIGGER {table}_cache_row_changed ON {table};
        """)
    op.execute("DROP FUNCTION cache_table_emptied(); DROP FUNCTION cache_row_changed();")
