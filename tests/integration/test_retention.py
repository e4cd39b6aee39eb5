"""The retention workflow on the real stack, in batches of one row (the session's settings): what is past its retention is purged or
anonymized, what is not stays, the run is audited with its counts, and a second run finds nothing more to do."""

import os
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from core.documents import staging_key
from core.storage.local import LocalDirectoryStorage
from models.backups import RetentionInput, RetentionResult
from tests.conftest import make_org
from workflows.retention import RetentionWorkflow

DAY = timedelta(days=1)


async def seed(db, user_id: str) -> dict[str, list]:
    """Rows on both sides of each retention (the defaults: audit 7 years, read notifications and email bodies 90
    days, settled bank events' payloads 400 days, expired refresh tokens 30 days): {kind: [old ids, kept ids]}."""
    now = datetime.now(UTC)
    tag = uuid.uuid4().hex[:8]
    rows: dict[str, list] = {}
    async with db.session() as session, session.begin():

        async def insert(sql: str, **values) -> object:
            return (await session.execute(text(sql + " RETURNING 1, *"), values)).one()[1]

        audit = "INSERT INTO audit_log (at, actor, action, entity_type, entity_id) VALUES (:at, 'test', 'x', 't', :e)"
        rows["audit"] = [
            [await insert(audit, at=now - 8 * 365 * DAY, e=f"{tag}-{n}") for n in range(2)],
            [await insert(audit, at=now - 6 * 365 * DAY, e=f"{tag}-kept")],
        ]
        note = (
            "INSERT INTO notifications (id, user_id, kind, title, body, dedupe_key, read_at, created_at) "
            "VALUES (gen_random_uuid(), :u, 'k', 't', 'b', :k, :read, :created)"
        )
        rows["notifications"] = [
            [await insert(note, u=user_id, k=f"{tag}-old", read=now - 100 * DAY, created=now - 200 * DAY)],
            [
                await insert(note, u=user_id, k=f"{tag}-recent", read=now - 10 * DAY, created=now - 200 * DAY),
                await insert(note, u=user_id, k=f"{tag}-unread", read=None, created=now - 1000 * DAY),
            ],
        ]
        mail = (
            "INSERT INTO email_outbox (id, dedupe_key, to_address, subject, text_body, html_body, status, sent_at, "
            "created_at) VALUES (gen_random_uuid(), :k, 'a@tests.example', 's', 'secret body', '<p>secret</p>', "
            ":status, :sent, :created)"
        )
        rows["emails"] = [
            [await insert(mail, k=f"{tag}-old", status="sent", sent=now - 100 * DAY, created=now - 100 * DAY)],
            [
                await insert(mail, k=f"{tag}-recent", status="sent", sent=now - 10 * DAY, created=now - 10 * DAY),
                await insert(mail, k=f"{tag}-pending", status="pending", sent=None, created=now - 100 * DAY),
            ],
        ]
        event = (
            "INSERT INTO bank_events (event_id, type, payload, status, received_at) "
            "VALUES (:e, 'settlement', '{\"account\": \"123\"}', :status, :at)"
        )
        rows["bank_events"] = [
            [
                await insert(event, e=f"{tag}-applied", status="applied", at=now - 500 * DAY),
                await insert(event, e=f"{tag}-resolved", status="resolved", at=now - 500 * DAY),
            ],
            [
                await insert(event, e=f"{tag}-pending", status="pending", at=now - 500 * DAY),
                await insert(event, e=f"{tag}-recent", status="applied", at=now - 10 * DAY),
            ],
        ]
        token = "INSERT INTO refresh_tokens (jti, family_id, user_id, expires_at) VALUES (:j, :j, :u, :at)"
        rows["tokens"] = [
            [await insert(token, j=f"{tag}-old", u=user_id, at=now - 40 * DAY)],
            [await insert(token, j=f"{tag}-recent", u=user_id, at=now - 10 * DAY)],
        ]
        bucket = (
            "INSERT INTO rate_limit_buckets (key, tokens, capacity, rate, allowed, updated_at) "
            "VALUES (:k, 0, 5, 1, false, :at)"
        )
        rows["buckets"] = [
            [await insert(bucket, k=f"reads|{tag}-idle", at=now - 2 * DAY)],
            [await insert(bucket, k=f"reads|{tag}-recent", at=now - DAY / 2)],
        ]
    return rows


async def ids(db, sql: str, wanted: list) -> set:
    async with db.session() as session:
        return set((await session.execute(text(sql), {"ids": wanted})).scalars())


async def test_retention_purges_and_anonymizes_past_retention_and_audits_the_counts(
    temporal_env, settings, worker, http, su, db
):
    org = await make_org(http, su, roles=("member",))
    (
        (old_audit, kept_audit),
        (old_notes, kept_notes),
        (old_mail, kept_mail),
        (old_events, kept_events),
        (
            old_tokens,
            kept_tokens,
        ),
        (old_buckets, kept_buckets),
    ) = (await seed(db, org.users["member"]["id"])).values()
    # Two sealed uploads waiting for a scan: one a crash left two hours ago, one of an upload under way.
    storage = LocalDirectoryStorage(settings.document_storage_dir)
    left, under_way = staging_key(uuid.uuid4()), staging_key(uuid.uuid4())
    for key in (left, under_way):
        await storage.put(key, b"sealed bytes")
    two_hours_ago = time.time() - 2 * 3600
    os.utime(storage.path(left), (two_hours_ago, two_hours_ago))

    handle = await temporal_env.client.start_workflow(
        RetentionWorkflow.run,
        RetentionInput(),
        id=f"retention-{uuid.uuid4()}",
        task_queue=settings.task_queue,
    )
    result: RetentionResult = await handle.result()

    assert await ids(db, "SELECT id FROM audit_log WHERE id = ANY(:ids)", old_audit + kept_audit) == set(kept_audit)
    assert await ids(db, "SELECT id FROM notifications WHERE id = ANY(:ids)", old_notes + kept_notes) == set(kept_notes)
    redacted = "SELECT id FROM email_outbox WHERE id = ANY(:ids) AND redacted_at IS NOT NULL AND text_body = '' AND html_body IS NULL"
    assert await ids(db, redacted, old_mail + kept_mail) == set(old_mail)
    assert await ids(db, "SELECT id FROM email_outbox WHERE id = ANY(:ids)", old_mail) == set(old_mail)  # kept
    emptied = "SELECT id FROM bank_events WHERE id = ANY(:ids) AND payload IS NULL"
    assert await ids(db, emptied, old_events + kept_events) == set(old_events)
    assert await ids(db, "SELECT jti FROM refresh_tokens WHERE jti = ANY(:ids)", old_tokens + kept_tokens) == set(
        kept_tokens
    )
    buckets = "SELECT key FROM rate_limit_buckets WHERE key = ANY(:ids)"
    assert await ids(db, buckets, old_buckets + kept_buckets) == set(kept_buckets)

    # Counts per rule (the session's other rows are all younger than any retention, so these are ours).
    assert result.counts == {
        "audit_log.deleted": 2,
        "notifications.deleted": 1,
        "email_outbox.bodies_redacted": 1,
        "bank_events.payloads_dropped": 2,
        "refresh_tokens.deleted": 1,
        "rate_limit_buckets.deleted": 1,
        "staged_uploads.deleted": 1,
    }
    assert (await storage.exists(left), await storage.exists(under_way)) == (False, True)
    await storage.delete(under_way)
    run_id = (await handle.describe()).run_id
    async with db.session() as session:
        audited = (
            await session.execute(
                text("SELECT actor, after FROM audit_log WHERE action = 'retention.purged' AND entity_id = :r"),
                {"r": run_id},
            )
        ).all()
    assert len(audited) == 1
    assert audited[0].actor == f"system:{handle.id}"
    assert audited[0].after["counts"] == result.counts
    assert set(audited[0].after["cutoffs"]) == set(result.counts)

    again: RetentionResult = await temporal_env.client.execute_workflow(
        RetentionWorkflow.run, RetentionInput(), id=f"retention-{uuid.uuid4()}", task_queue=settings.task_queue
    )
    assert set(again.counts.values()) == {0}
