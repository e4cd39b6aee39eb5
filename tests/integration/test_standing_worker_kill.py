"""A standing instruction's runs across a worker SIGKILLed at the unluckiest point (PRODUCT.md §4.8): each run's
payment made and posted, the run not yet recorded. A new worker retries the runs' activities: each run pays once
(its payment's Idempotency-Key holds the scheduled time) and is recorded once.

The point is made deterministic with a lock, not a race: the test holds standing_instruction_runs in EXCLUSIVE
mode (reads pass, inserts wait), so the worker's pay_run makes and posts the payment, then blocks recording the
run; the test sees both runs' inserts waiting in pg_locks and kills the worker there."""

import os
import signal
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from temporalio.client import ScheduleBackfill, ScheduleOverlapPolicy

from devstack import processes
from domain import standing
from domain.standing import StandingInstructionIn
from models.users import User
from tests.conftest import make_org, open_account
from tests.integration.test_report_runs import start_worker
from tests.polling import poll


async def balance(http, su, account: dict) -> Decimal:
    return Decimal((await http.get(f"/api/v1/accounts/{account['id']}", headers=su)).json()["ledger_balance"])


async def scalar(db, sql: str, **params):
    async with db.session() as session:
        return (await session.execute(text(sql), params)).scalar_one()


async def test_runs_killed_after_paying_before_recording_pay_once_and_record_once(
    http, su, db, settings, temporal_env, mailbox, tmp_path
):
    org = await make_org(http, su)
    owner = org.users["member"]
    src = await open_account(http, su, org.id, owner["id"], deposit="100.00")
    dst = await open_account(http, su, org.id, owner["id"])
    # The instruction's schedule starts its runs on a queue only this test's workers serve.
    queue = f"standing-crash-{uuid.uuid4().hex[:8]}"
    crash = settings.model_copy(update={"task_queue": queue})
    body = StandingInstructionIn(
        from_account_id=src["id"],
        to_account_id=dst["id"],
        amount=Decimal("12.50"),
        memo="Crash-proof savings",
        every=timedelta(days=1),  # runs at 00:00 UTC; the next natural one is hours away
        start_at=datetime(2026, 10, 1, tzinfo=UTC),
    )
    async with db.session() as session:
        user = await session.get(User, uuid.UUID(owner["id"]))
        assert user is not None
        made, created = await standing.create(session, user, temporal_env.client, crash, body, uuid.uuid4().hex)
    assert created
    instruction_id = str(made.id)
    schedule = temporal_env.client.get_schedule_handle(made.schedule_id)
    days = [datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)]
    keys = [f"standing:{instruction_id}:{day.isoformat()}:1" for day in days]

    payments_sql = (
        "SELECT count(*) FROM payments WHERE idempotency_key LIKE :prefix AND status = 'completed'",
        {"prefix": f"standing:{instruction_id}:%"},
    )
    runs_sql = "SELECT count(*) FROM standing_instruction_runs WHERE instruction_id = :id"
    workers = []
    try:
        async with db.session() as blocker:
            await blocker.execute(text("LOCK TABLE standing_instruction_runs IN EXCLUSIVE MODE"))
            workers.append(start_worker(crash, tmp_path / "worker-1.log", smtp_port=mailbox.port))
            # Two catch-up runs of two past days, side by side.
            await schedule.backfill(
                ScheduleBackfill(
                    start_at=days[0] - timedelta(minutes=1),
                    end_at=days[1] + timedelta(minutes=1),
                    overlap=ScheduleOverlapPolicy.ALLOW_ALL,
                )
            )

            async def stuck() -> tuple[int, int]:
                waiting = await scalar(
                    db,
                    "SELECT count(*) FROM pg_locks WHERE relation = 'standing_instruction_runs'::regclass "
                    "AND NOT granted",
                )
                return waiting, await scalar(db, payments_sql[0], **payments_sql[1])

            await poll(stuck, lambda s: s == (2, 2), 90, "both runs never paid and blocked recording")
            os.killpg(workers[0].pid, signal.SIGKILL)
            workers[0].wait(timeout=30)
            await blocker.rollback()  # the dead worker's inserts were never committed: they roll back with it
        assert await scalar(db, runs_sql, id=instruction_id) == 0
        assert await balance(http, su, dst) == Decimal("25.00")

        # A new worker: each run's activity, retried once its attempt times out, finds the payment its key made.
        workers.append(start_worker(crash, tmp_path / "worker-2.log", smtp_port=mailbox.port))
        await poll(
            lambda: scalar(db, runs_sql, id=instruction_id),
            lambda n: n == 2,
            180,
            "the runs were never recorded after the restart",
        )
        await poll(schedule.describe, lambda d: not d.info.running_actions, 60, "a run never ended")
    finally:
        for worker in workers:
            processes.stop(worker)  # SIGTERM, then SIGKILL: a worker slow to stop must not hang the suite
        await schedule.delete()

    async with db.session() as session:
        paid = (
            await session.execute(
                text(
                    "SELECT idempotency_key, id, status, amount FROM payments WHERE idempotency_key LIKE :prefix "
                    "ORDER BY idempotency_key"
                ),
                {"prefix": f"standing:{instruction_id}:%"},
            )
        ).all()
        runs = (
            await session.execute(
                text(
                    "SELECT scheduled_for, attempt, status, payment_id FROM standing_instruction_runs "
                    "WHERE instruction_id = :id ORDER BY scheduled_for"
                ),
                {"id": instruction_id},
            )
        ).all()
        postings = (
            await session.execute(
                text(
                    "SELECT count(*) FROM journal_entries WHERE id IN "
                    "(SELECT journal_entry_id FROM payments WHERE idempotency_key LIKE :prefix)"
                ),
                {"prefix": f"standing:{instruction_id}:%"},
            )
        ).scalar_one()
    assert [row.idempotency_key for row in paid] == keys
    assert all(row.status == "completed" and row.amount == Decimal("12.50") for row in paid)
    assert [(row.scheduled_for, row.attempt, row.status) for row in runs] == [(day, 1, "completed") for day in days]
    assert [row.payment_id for row in runs] == [row.id for row in paid]
    assert postings == 2
    assert await balance(http, su, dst) == Decimal("25.00")
    assert await balance(http, su, src) == Decimal("75.00")
