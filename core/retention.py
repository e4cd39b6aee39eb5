"""What is kept how long (RetentionWorkflow, daily): each rule purges or anonymizes, in batches of one statement
each, the rows past their retention. Nothing of the ledger is ever among them: journal entries, postings and
ledger accounts refuse DELETE in the database itself (migration 0015; postings since 0001).

Each statement takes at most `:batch` rows (the oldest first, by key) and returns how many it touched; the
activity repeats it until it touches none. Anonymizing statements skip rows already done, so a repeat is a no-op.
"""

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import TextClause, text

from core.config import Settings
from core.rate_limit import IDLE_BUCKET_RETENTION


@dataclass(frozen=True)
class Rule:
    name: str  # table.what, as the audit row counts it
    retention: timedelta
    batch: TextClause  # binds :cutoff and :batch; returns one row per row touched


def rules(settings: Settings) -> list[Rule]:
    return [
        Rule(
            "audit_log.deleted",
            settings.audit_retention,
            text(
                "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < :cutoff "
                "ORDER BY id LIMIT :batch) RETURNING id"
            ),
        ),
        Rule(
            "notifications.deleted",  # in-app notifications read long ago; unread ones stay
            settings.read_notification_retention,
            text(
                "DELETE FROM notifications WHERE id IN (SELECT id FROM notifications WHERE read_at < :cutoff "
                "ORDER BY id LIMIT :batch) RETURNING id"
            ),
        ),
        Rule(
            # The row stays: its dedupe key still stops a late retry from sending the email again.
            "email_outbox.bodies_redacted",
            settings.email_body_retention,
            text(
                "UPDATE email_outbox SET text_body = '', html_body = NULL, redacted_at = now() WHERE id IN ("
                "SELECT id FROM email_outbox WHERE redacted_at IS NULL AND status <> 'pending' "
                "AND coalesce(sent_at, created_at) < :cutoff ORDER BY id LIMIT :batch) RETURNING id"
            ),
        ),
        Rule(
            # Settled business: the event id (it still refuses a redelivery), type, trace and status stay.
            "bank_events.payloads_dropped",
            settings.bank_event_payload_retention,
            text(
                "UPDATE bank_events SET payload = NULL WHERE id IN (SELECT id FROM bank_events "
                "WHERE payload IS NOT NULL AND status IN ('applied', 'resolved') AND received_at < :cutoff "
                "ORDER BY id LIMIT :batch) RETURNING id"
            ),
        ),
        Rule(
            "refresh_tokens.deleted",  # expired: no longer usable, nor needed to spot a reused one
            settings.expired_token_retention,
            text(
                "DELETE FROM refresh_tokens WHERE jti IN (SELECT jti FROM refresh_tokens WHERE expires_at < :cutoff "
                "ORDER BY jti LIMIT :batch) RETURNING jti"
            ),
        ),
        Rule(
            "rate_limit_buckets.deleted",  # idle long enough to be full: a new request starts a full one anyway
            IDLE_BUCKET_RETENTION,
            text(
                "DELETE FROM rate_limit_buckets WHERE key IN (SELECT key FROM rate_limit_buckets "
                "WHERE updated_at < :cutoff ORDER BY key LIMIT :batch) RETURNING key"
            ),
        ),
    ]


# One audit row per run, whatever retries happen: counts per rule, the cutoffs they used.
AUDIT_RUN = text("""
INSERT INTO audit_log (actor, action, entity_type, entity_id, after)
SELECT CAST(:actor AS varchar), 'retention.purged', 'retention_run', CAST(:run_id AS varchar), CAST(:after AS jsonb)
WHERE NOT EXISTS (
    SELECT 1 FROM audit_log WHERE action = 'retention.purged' AND entity_type = 'retention_run' AND entity_id = CAST(:run_id AS varchar)
)
""")
