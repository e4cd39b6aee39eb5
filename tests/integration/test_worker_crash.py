"""SIGKILL the worker in the middle of book transfers: a new worker finishes every one, each exactly once."""

import asyncio
import os
import signal
import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
import psycopg
from sqlalchemy import text

from core.db import libpq_url
from devstack import processes
from tests.conftest import ApiServer, make_org, open_account

FIRST, SECOND = 15, 35


def start_worker(settings, log_path):
    port = processes.free_port()
    child = processes.start(
        processes.python("worker.py"),
        env={
            "DATABASE_URL": settings.database_url,
            "TEMPORAL_ADDRESS": settings.temporal_address,
            "TASK_QUEUE": settings.task_queue,
            "WORKER_METRICS_ADDRESS": f"127.0.0.1:{port}",
        },
        log_path=log_path,
    )
    processes.wait_for_port(port, child, name="worker")
    return child


async def completed(db, payment_ids) -> int:
    async with db.session() as session:
        return (
            await session.execute(
                text("SELECT count(*) FROM payments WHERE id = ANY(:ids) AND status = 'completed'"),
                {"ids": payment_ids},
            )
        ).scalar_one()


async def wait_completed(db, payment_ids, timeout: float) -> None:
    for _ in range(int(timeout * 5)):
        if await completed(db, payment_ids) == len(payment_ids):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"only {await completed(db, payment_ids)} of {len(payment_ids)} completed")


async def transfers_through_a_crash(settings, org, src, dst, amounts, workers, db, tmp_path):
    async with ApiServer(settings) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as api:

        async def transfer(amount):
            response = await api.post(
                "/api/v1/transfers/book",
                headers={**org.headers["member"], "Idempotency-Key": f"crash-{amount}"},
                json={"from_account_id": src["id"], "to_account_id": dst["id"], "amount": str(amount)},
            )
            assert response.status_code in (201, 202), response.text
            return uuid.UUID(response.json()["id"])

        first = await asyncio.gather(*(transfer(a) for a in amounts[:FIRST]))
        await wait_completed(db, first, timeout=30)

        # Freeze the next transfers inside their activity by locking the source account, then kill the worker.
        with psycopg.connect(libpq_url(settings.database_url)) as lock:
            lock.execute("SELECT id FROM ledger_accounts WHERE id = %s FOR NO KEY UPDATE", (src["id"],))
            second = await asyncio.gather(*(transfer(a) for a in amounts[FIRST:]))
            for _ in range(100):
                waiting = lock.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                ).fetchone()[0]
                if waiting:
                    break
                await asyncio.sleep(0.1)
            assert waiting, "no transfer reached its activity before the kill"
            os.killpg(workers[0].pid, signal.SIGKILL)
            workers[0].wait(timeout=30)
            lock.rollback()
        assert await completed(db, second) < SECOND

        workers.append(start_worker(settings, tmp_path / "worker-2.log"))
        await wait_completed(db, second, timeout=90)
    return first, second


async def test_sigkill_mid_transfers_then_every_transfer_completes_exactly_once(settings, http, su, db, tmp_path):
    crash_settings = settings.model_copy(
        update={"task_queue": f"crash-{uuid.uuid4().hex[:8]}", "book_transfer_wait": timedelta(0)}
    )
    org = await make_org(http, su)
    src = await open_account(http, su, org.id, org.users["member"]["id"], deposit="10000.00")
    dst = await open_account(http, su, org.id, org.users["member"]["id"], type_="savings")
    amounts = [Decimal(i) + Decimal("0.01") * i for i in range(1, FIRST + SECOND + 1)]

    workers = [start_worker(crash_settings, tmp_path / "worker-1.log")]
    try:
        first, second = await transfers_through_a_crash(crash_settings, org, src, dst, amounts, workers, db, tmp_path)
    finally:
        for worker in workers:
            processes.stop(worker)

    # Both workers ran on uvloop (worker.py), the loop the kill and the new worker's recovery were proven on.
    for log in ("worker-1.log", "worker-2.log"):
        started = [line for line in (tmp_path / log).read_text().splitlines() if "worker started" in line]
        assert len(started) == 1 and "uvloop" in started[0], started

    ids = [*first, *second]
    async with db.session() as session:
        per_payment = (
            await session.execute(
                text(
                    "SELECT p.id, count(DISTINCT j.id) AS entries, "
                    "  (SELECT count(*) FROM payment_events e WHERE e.payment_id = p.id AND e.status = 'completed') AS events, "
                    "  (SELECT count(*) FROM audit_log a WHERE a.entity_id = p.id::text AND a.action = 'payment.completed') AS audits "
                    "FROM payments p LEFT JOIN journal_entries j ON j.payment_id = p.id WHERE p.id = ANY(:ids) GROUP BY p.id"
                ),
                {"ids": ids},
            )
        ).all()
        books = (await session.execute(text("SELECT sum(amount) FROM postings"))).scalar_one()
    assert len(per_payment) == len(amounts)
    assert all((row.entries, row.events, row.audits) == (1, 1, 1) for row in per_payment), per_payment
    assert books == 0
    total = sum(amounts)
    assert (await http.get(f"/api/v1/accounts/{src['id']}", headers=su)).json()["ledger_balance"] == str(
        Decimal("10000.00") - total
    )
    assert (await http.get(f"/api/v1/accounts/{dst['id']}", headers=su)).json()["ledger_balance"] == str(total)
