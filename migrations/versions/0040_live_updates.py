"""live updates: who is connected (presence) and the triggers that announce new notifications and changes

Revision ID: 0040
Revises: 0039
Create Date: 2026-12-02 15:00:00

Every API process LISTENs on the channel `live_updates` (core/live/listener.py) and passes each event to the
WebSockets of the users it names; the payload is `{"user_ids": [...], "type": ..., "data": {...}}` (under Postgres'
8000-byte limit: long texts are left out, the client fetches the row by its id).

* `notifications`: each new in-app notification goes to its user (a row trigger: an ON CONFLICT DO NOTHING that
  inserts nothing announces nothing).
* `transaction_changes`: each statement's changes go to the record's owner and to the grantees of the owner's live
  'transactions' shares whose scope lets them see the record (the same scope as core/access.money_rows; a category
  share also hears a record leaving or entering one of its categories). One event per statement and audience: a
  bulk re-categorisation of thousands of records is one event with a count, not thousands.
* `live_sessions`: the sockets each API process holds per user, refreshed by the process's heartbeat; a row not
  refreshed for a while is a dead process's, swept by the others (domain/presence.py).
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0040"
down_revision: Union[str, None] = "0039"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

NOTIFICATION_TRIGGER = """
CREATE FUNCTION live_notification() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('live_updates', json_build_object(
        'user_ids', json_build_array(NEW.user_id),
        'type', 'notification',
        'data', json_build_object(
            'id', NEW.id, 'kind', NEW.kind, 'title', NEW.title,
            'body', CASE WHEN octet_length(NEW.body) <= 2000 THEN NEW.body END,
            'entity_type', NEW.entity_type, 'entity_id', NEW.entity_id, 'created_at', NEW.created_at)
    )::text);
    RETURN NULL;
END $$
"""
NOTIFICATION_TRIGGER_ON = (
    "CREATE TRIGGER live_notification AFTER INSERT ON notifications FOR EACH ROW EXECUTE FUNCTION live_notification()"
)

# Who hears each change: the owner, and each live 'transactions' grantee whose scope admits the record (looked up in
# member_transactions only for a scoped share: the LATERAL's `s.scope <> 'all'` is a one-time filter). Changes are
# listed while the event stays small (20 of them, 6000 bytes), else counted only.
CHANGES_TRIGGER = """
CREATE FUNCTION live_transaction_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('live_updates', json_build_object(
        'user_ids', users, 'type', 'transaction_changes',
        'data', json_build_object(
            'owner_id', owner_id, 'count', n,
            'changes', CASE WHEN n <= 20 AND octet_length(changes) <= 6000 THEN changes::json END)
    )::text)
    FROM (
        SELECT owner_id, n, changes, json_agg(recipient) AS users
        FROM (
            SELECT r.recipient, c.user_id AS owner_id, count(*) AS n,
                   json_agg(json_build_object('txn_id', c.txn_id, 'field', c.field, 'new_value', c.new_value,
                                              'changed_at', c.changed_at) ORDER BY c.id)::text AS changes
            FROM (
                SELECT c.id, c.user_id AS recipient FROM new_rows c
                UNION
                SELECT c.id, s.grantee_id
                FROM new_rows c
                JOIN money_shares s ON s.owner_id = c.user_id AND s.what = 'transactions' AND s.revoked_at IS NULL
                LEFT JOIN LATERAL (
                    SELECT m.amount, m.category_key FROM member_transactions m
                    WHERE s.scope <> 'all' AND m.user_id = c.user_id AND m.txn_id = c.txn_id
                ) m ON true
                WHERE s.scope = 'all'
                   OR (s.scope = 'expenses' AND m.amount < 0)
                   OR (s.scope = 'income' AND m.amount > 0)
                   OR (s.scope = 'categories' AND (m.category_key = ANY(s.category_keys)
                       OR (c.field = 'category' AND (c.old_value = ANY(s.category_keys)
                                                     OR c.new_value = ANY(s.category_keys)))))
            ) r
            JOIN new_rows c ON c.id = r.id
            GROUP BY r.recipient, c.user_id
        ) per_recipient
        GROUP BY owner_id, n, changes
    ) events;
    RETURN NULL;
END $$
"""
CHANGES_TRIGGER_ON = """
CREATE TRIGGER live_transaction_changes AFTER INSERT ON transaction_changes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION live_transaction_changes()
"""


def upgrade() -> None:
    op.create_table(
        "live_sessions",
        sa.Column("process_id", sa.String(100), primary_key=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("sockets", sa.Integer(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("sockets > 0", name="live_sessions_sockets"),
    )
    op.create_index("live_sessions_user", "live_sessions", ["user_id"])
    for statement in (NOTIFICATION_TRIGGER, NOTIFICATION_TRIGGER_ON, CHANGES_TRIGGER, CHANGES_TRIGGER_ON):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER live_transaction_changes ON transaction_changes")
    op.execute("DROP FUNCTION live_transaction_changes()")
    op.execute("DROP TRIGGER live_notification ON notifications")
    op.execute("DROP FUNCTION live_notification()")
    op.drop_table("live_sessions")
