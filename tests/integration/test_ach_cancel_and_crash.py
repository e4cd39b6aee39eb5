"""Cancel before submission, and a worker SIGKILLed while 200 ACH payments are in flight."""

import asyncio
import os
import signal
import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
from sqlalchemy import text

from devstack import processes
from tests.conftest import ApiServer, assert_error, make_org, open_account
from tests.integration.test_ach import link_external, wait_status
from worker import build_worker


async def test_cancel_before_submission_releases_the_hold_and_sends_nothing(
    http, su, temporal_env, settings, db, sandbox_url, odfi
):
    # A window that closes a minute away leaves time to cancel, deterministically.
    slow = settings.model_copy(
        update={"task_queue": f"slow-{uuid.uuid4().hex[:8]}", "ach_window_interval": timedelta(seconds=60)}
    )
    org = await make_org(http, su)
    account = await open_account(http, su, org.id, org.users["member"]["id"], deposit="500.00")
    external = await link_external(http, sandbox_url, org)
    async with (
        build_worker(temporal_env.client, slow, db),
        ApiServer(slow) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as api,
    ):
        admin = {**org.headers["org_admin"], "Idempotency-Key": uuid.uuid4().hex}
        created = (
            await api.post(
                "/api/v1/payments",
                headers=admin,
                json={
                    "kind": "ach_credit",
                    "amount": "200.00",
                    "account_id": account["id"],
                    "external_account_id": external["id"],
                },
            )
        ).json()
        queued = await wait_status(api, admin, created["id"], statuses={"queued"}, timeout=20)
        assert queued["window_id"]
        held = (await api.get(f"/api/v1/accounts/{account['id']}", headers=su)).json()
        assert (held["held"], held["available_balance"]) == ("200.00", "300.00")

        assert_error(await api.post(f"/api/v1/payments/{created['id']}/cancel", headers=org.headers["member"]), 403)
        canceled = await api.post(f"/api/v1/payments/{created['id']}/cancel", headers=org.headers["org_admin"])
        assert canceled.status_code == 200, canceled.text
        assert canceled.json()["status"] == "canceled"
        again = await api.post(f"/api/v1/payments/{created['id']}/cancel", headers=org.headers["org_admin"])
        assert again.status_code == 200 and again.json()["status"] == "canceled"
        after = (await api.get(f"/api/v1/accounts/{account['id']}", headers=su)).json()
        assert (after["ledger_balance"], after["held"], after["available_balance"]) == ("500.00", "0.00", "500.00")
        result = await temporal_env.client.get_workflow_handle(created["workflow_id"]).result()
        assert result["status"] == "canceled"
        # This window's batch runs on this test's task queue, whose worker stops now: end it, so that a payment of
        # another test landing in a window of the same id starts a batch of its own (as after an operator's
        # terminate in production).
        await temporal_env.client.get_workflow_handle(f"ach-batch-{queued['window_id']}").terminate("test over")
    async with db.session() as session:
        entries = (
            await session.execute(
                text("SELECT count(*) FROM ach_entries WHERE payment_id = :p"), {"p": uuid.UUID(created["id"])}
            )
        ).scalar_one()
    assert entries == 0


def start_worker(settings, log_path):
    port = processes.free_port()
    child = processes.start(
        processes.python("worker.py"),
        env={
            "DATABASE_URL": settings.database_url,
            "TEMPORAL_ADDRESS": settings.temporal_address,
            "TASK_QUEUE": settings.task_queue,
            "WORKER_METRICS_ADDRESS": f"127.0.0.1:{port}",
            "ODFI_BASE_URL": settings.odfi_base_url,
            "SMTP_HOST": settings.smtp_host,
            "SMTP_PORT": str(settings.smtp_port),
            "ACH_WINDOW_INTERVAL": f"PT{settings.ach_window_interval.total_seconds()}S",
        },
        log_path=log_path,
    )
    processes.wait_for_port(port, child, name="worker")
    return child


async def test_sigkill_with_200_ach_payments_in_flight(http, su, settings, db, sandbox_url, odfi, tmp_path):
    crash = settings.model_copy(update={"task_queue": f"ach-crash-{uuid.uuid4().hex[:8]}"})
    org = await make_org(http, su)
    account = await open_account(http, su, org.id, deposit="100000.00")
    external = await link_external(http, sandbox_url, org)
    # Mostly settling; some R01 every time (re-presented twice, then returned), some R01 then settling on
    # re-presentment; a tenth are credits. (Codes that disable or block the account would stop the rest.)
    amounts = [
        (
            ("ach_credit" if i % 10 == 5 else "ach_debit"),
            Decimal(10 + i) + Decimal({1: "0.01", 2: "0.11"}.get(i % 10, "0.00")),
        )
        for i in range(200)
    ]

    workers = [start_worker(crash, tmp_path / "worker-1.log")]
    try:
        async with ApiServer(crash) as server, httpx.AsyncClient(base_url=server.url, timeout=60) as api:
            limit = asyncio.Semaphore(25)

            async def create(kind, amount):
                async with limit:
                    response = await api.post(
                        "/api/v1/payments",
                        headers={**org.headers["org_admin"], "Idempotency-Key": f"crash-{kind}-{amount}"},
                        json={
                            "kind": kind,
                            "amount": str(amount),
                            "account_id": account["id"],
                            "external_account_id": external["id"],
                        },
                    )
                    assert response.status_code == 201, response.text
                    return response.json()["id"]

            ids = await asyncio.gather(*(create(kind, amount) for kind, amount in amounts))
            # Kill once some have finished and many are somewhere in between.
            for _ in range(300):
                async with db.session() as session:
                    done = (
                        await session.execute(
                            text(
                                "SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status IN "
                                "('queued', 'submitted', 'pending_settlement', 'settled')) FROM payments WHERE id = ANY(:ids)"
                            ),
                            {"ids": [uuid.UUID(i) for i in ids]},
                        )
                    ).one()
                if done[0] >= 10:
                    break
                await asyncio.sleep(0.1)
            assert done[1] > 0, "nothing was in flight at the kill"
            os.killpg(workers[0].pid, signal.SIGKILL)
            workers[0].wait(timeout=30)
            await asyncio.sleep(1)  # webhooks keep arriving while no worker runs: they are recorded and signaled
            workers.append(start_worker(crash, tmp_path / "worker-2.log"))
            results = [await wait_status(api, org.headers["org_admin"], i, timeout=180) for i in ids]
    finally:
        for worker in workers:
            processes.stop(worker)

    expected = {"0.00": "completed", "0.01": "returned", "0.11": "completed"}
    for (kind, amount), result in zip(amounts, results, strict=True):
        assert result["status"] == expected[str(amount % 1)], (kind, amount, result["events"])
    # The sandbox bank got every entry exactly once; our books balance to the cent.
    async with db.session() as session:
        traces = (
            (
                await session.execute(
                    text("SELECT trace_number FROM ach_entries WHERE payment_id = ANY(:ids)"),
                    {"ids": [uuid.UUID(i) for i in ids]},
                )
            )
            .scalars()
            .all()
        )
        per_step = (
            await session.execute(
                text(
                    "SELECT idempotency_key, count(*) FROM journal_entries WHERE payment_id = ANY(:ids) "
                    "GROUP BY idempotency_key HAVING count(*) > 1"
                ),
                {"ids": [uuid.UUID(i) for i in ids]},
            )
        ).all()
        books = (await session.execute(text("SELECT sum(amount) FROM postings"))).scalar_one()
    assert per_step == [] and books == 0
    received = {e["trace_number"]: e for e in (await odfi.get("/odfi/entries")).json()["entries"]}
    assert all(received[t]["received_count"] == 1 for t in traces)
    # One entry per presentment, never two (a retried step must not queue a presentment again).
    assert len(traces) == sum({"0.01": 3, "0.11": 2}.get(str(a % 1), 1) for _, a in amounts)
    # Money: every debit that completed came in, every credit went out, returns undid theirs (payment by payment).
    async with db.session() as session:
        moved = dict(
            (
                await session.execute(
                    text(
                        "SELECT j.payment_id, -sum(p.amount) FROM journal_entries j JOIN postings p ON p.entry_id = j.id "
                        "WHERE p.account_id = :a GROUP BY j.payment_id"
                    ),
                    {"a": uuid.UUID(account["id"])},
                )
            ).all()
        )
        keys = dict(
            (
                await session.execute(
                    text(
                        "SELECT payment_id, string_agg(idempotency_key, ' ' ORDER BY created_at) FROM journal_entries "
                        "WHERE payment_id = ANY(:ids) GROUP BY payment_id"
                    ),
                    {"ids": [uuid.UUID(i) for i in ids]},
                )
            ).all()
        )
    wrong = [
        (
            kind,
            amount,
            result["status"],
            moved.get(uuid.UUID(result["id"])),
            keys.get(uuid.UUID(result["id"])),
            [e["status"] for e in result["events"]],
        )
        for (kind, amount), result in zip(amounts, results, strict=True)
        if moved.get(uuid.UUID(result["id"]), 0)
        != (0 if result["status"] != "completed" else amount if kind == "ach_debit" else -amount)
    ]
    assert wrong == []
    net = sum(
        (a if k == "ach_debit" else -a)
        for (k, a), r in zip(amounts, results, strict=True)
        if r["status"] == "completed"
    )
    balance = (await http.get(f"/api/v1/accounts/{account['id']}", headers=su)).json()
    assert Decimal(balance["ledger_balance"]) == Decimal("100000.00") + net
    assert balance["held"] == "0.00"
