"""Report runs and scheduled definitions (domain/report_runs.py) on the real stack: a run generates the same file as
the report's own endpoint, stores it sealed, tells its requester once (email and in-app) with a link that downloads
it (audited); a run whose worker is SIGKILLed while telling resumes without generating again and tells once; a
definition's Schedule, backfilled twice over the same time, makes one run of that time, for the period before it."""

import asyncio
import csv
import io
import os
import signal
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text
from temporalio.client import ScheduleBackfill, ScheduleOverlapPolicy

from devstack import processes
from models.report_runs import ReportRunInput
from tests.conftest import assert_error, make_org, open_account
from tests.integration.test_bills import BlackHoleSmtp
from tests.mailbox import recipients
from tests.polling import poll
from workflows.report_run import ReportRunWorkflow


def keyed(headers: dict, key: str | None = None) -> dict:
    return {**headers, "Idempotency-Key": key or uuid.uuid4().hex}


async def run_of(http, headers, run_id: str) -> dict:
    response = await http.get(f"/api/v1/report-runs/{run_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def finished(http, headers, run_id: str) -> dict:
    return await poll(
        lambda: run_of(http, headers, run_id), lambda r: r["status"] != "queued", 90, "the report run never finished"
    )


async def test_a_run_stores_the_report_tells_its_requester_once_and_downloads_audited(http, su, db, mailbox):
    org = await make_org(http, su)
    admin, operator = org.headers["org_admin"], org.headers["operator"]
    await open_account(http, su, org.id, org.users["member"]["id"], deposit="250.00")
    body = {"kind": "balance-sheet", "format": "csv", "as_of": datetime.now(UTC).date().isoformat()}

    key = uuid.uuid4().hex
    asked = await http.post("/api/v1/report-runs", headers=keyed(admin, key), json=body)
    assert asked.status_code == 202, asked.text
    run = asked.json()
    assert run["org_id"] == org.id and run["workflow_id"] == f"report-{run['id']}" and run["download_url"] is None
    # The same key and body: the same run; the same key for another report: refused, nothing new.
    again = await http.post("/api/v1/report-runs", headers=keyed(admin, key), json=body)
    assert again.status_code == 200 and again.json()["id"] == run["id"]
    other = {**body, "kind": "trial-balance"}
    assert_error(
        await http.post("/api/v1/report-runs", headers=keyed(admin, key), json=other), 409, "idempotency_key_reused"
    )
    # A range backwards, an unknown kind, a field off the whitelist: 422, no run.
    backwards = {"kind": "income-statement", "date_from": "2026-05-02", "date_to": "2026-05-01"}
    assert_error(
        await http.post("/api/v1/report-runs", headers=keyed(admin), json=backwards), 422, "invalid_date_range"
    )
    assert_error(await http.post("/api/v1/report-runs", headers=keyed(admin), json={"kind": "ledger-dump"}), 422)
    sql = {"kind": "trial-balance", "where": "1=1"}
    assert_error(await http.post("/api/v1/report-runs", headers=keyed(admin), json=sql), 422)

    done = await finished(http, admin, run["id"])
    assert done["status"] == "ready", done
    assert done["download_url"].endswith(f"/api/v1/report-runs/{run['id']}/file")
    # Told once, by email and in-app, with the link.
    address = org.users["org_admin"]["email"]
    mail = await mailbox.wait_for(lambda m: address in recipients(m) and "report is ready" in m["Subject"], timeout=30)
    assert done["download_url"] in mail.get_body(("plain",)).get_content()
    notices = (await http.get("/api/v1/notifications", headers=admin)).json()["items"]
    assert [n["entity_id"] for n in notices if n["kind"] == "report_ready"] == [run["id"]]

    # The file is the report's own CSV for that day, byte for byte.
    got = await http.get(f"/api/v1/report-runs/{run['id']}/file", headers=operator)
    assert got.status_code == 200, got.text
    direct = await http.get(
        "/api/v1/reports/balance-sheet", headers=admin, params={"as_of": body["as_of"], "format": "csv"}
    )
    assert got.content == direct.content
    rows = list(csv.reader(io.StringIO(got.text)))
    assert any("250.00" in cell for row in rows for cell in row)
    async with db.session() as session:
        audited = (
            await session.execute(
                text("SELECT count(*) FROM audit_log WHERE entity_id = :id AND action = 'report_run.downloaded'"),
                {"id": run["id"]},
            )
        ).scalar_one()
    assert audited == 1

    # Nobody outside the organization sees the run or its file; a member may not ask for reports.
    stranger = await make_org(http, su)
    assert (
        await http.get(f"/api/v1/report-runs/{run['id']}", headers=stranger.headers["org_admin"])
    ).status_code == 404
    leak = await http.get(f"/api/v1/report-runs/{run['id']}/file", headers=stranger.headers["org_admin"])
    assert leak.status_code == 404
    listed = (await http.get("/api/v1/report-runs", headers=stranger.headers["org_admin"])).json()
    assert run["id"] not in [r["id"] for r in listed["items"]]
    assert_error(await http.post("/api/v1/report-runs", headers=keyed(org.headers["member"]), json=body), 403)
    # Nor may org staff name another organization.
    foreign = {**body, "org_id": stranger.id}
    assert (await http.post("/api/v1/report-runs", headers=keyed(admin), json=foreign)).status_code == 404


def start_worker(settings, log_path, smtp_port: int):
    """A worker for settings' queues in its own process (so it can be SIGKILLed), mailing to smtp_port."""
    port = processes.free_port()
    child = processes.start(
        processes.python("worker.py"),
        env={
            "DATABASE_URL": settings.database_url,
            "TEMPORAL_ADDRESS": settings.temporal_address,
            "TASK_QUEUE": settings.task_queue,
            "WORKER_METRICS_ADDRESS": f"127.0.0.1:{port}",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),
            "DOCUMENT_STORAGE_DIR": settings.document_storage_dir,
        },
        log_path=log_path,
    )
    processes.wait_for_port(port, child, name="worker")
    return child


async def test_a_run_killed_while_telling_resumes_and_tells_once(
    http, su, db, settings, temporal_env, mailbox, tmp_path
):
    org = await make_org(http, su)
    admin = org.headers["org_admin"]
    requester = org.users["org_admin"]
    run_id = uuid.uuid4()
    async with db.session() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO report_runs (id, org_id, kind, params, format, requested_by, status, workflow_id) "
                "VALUES (:id, :org, 'trial-balance', CAST(:params AS jsonb), 'xlsx', :by, 'queued', :wf)"
            ),
            {
                "id": run_id,
                "org": org.id,
                "params": '{"as_of": "2026-11-30"}',
                "by": requester["id"],
                "wf": f"report-{run_id}",
            },
        )
    queue = f"reports-crash-{uuid.uuid4().hex[:8]}"
    crash = settings.model_copy(update={"task_queue": queue})
    workers = []
    try:
        # The first worker generates and stores the file, then hangs telling (its SMTP server never answers): kill it.
        async with BlackHoleSmtp() as hole:
            workers.append(start_worker(crash, tmp_path / "worker-1.log", smtp_port=hole.port))
            handle = await temporal_env.client.start_workflow(
                ReportRunWorkflow.run, ReportRunInput(run_id=run_id), id=f"report-{run_id}", task_queue=queue
            )
            await poll(lambda: asyncio.sleep(0, hole.connections), bool, 60, "the worker never tried to send")
            os.killpg(workers[0].pid, signal.SIGKILL)
            workers[0].wait(timeout=30)
        assert mailbox.to(requester["email"]) == []
        stored = await run_of(http, admin, str(run_id))
        assert stored["status"] == "ready" and stored["sha256"]

        # A new worker resumes: the file is not made again (same row, same finish), the requester told once.
        workers.append(start_worker(crash, tmp_path / "worker-2.log", smtp_port=mailbox.port))
        outcome = await asyncio.wait_for(handle.result(), timeout=120)
        assert outcome.status == "ready"
        assert await handle.query(ReportRunWorkflow.progress) == "ready"
    finally:
        for worker in workers:
            processes.stop(worker)  # SIGTERM, then SIGKILL: a worker slow to stop must not hang the suite
    after = await run_of(http, admin, str(run_id))
    assert (after["sha256"], after["finished_at"]) == (stored["sha256"], stored["finished_at"])
    assert len([m for m in mailbox.to(requester["email"]) if "report is ready" in m["Subject"]]) == 1
    notices = (await http.get("/api/v1/notifications", headers=admin)).json()["items"]
    assert [n["entity_id"] for n in notices if n["kind"] == "report_ready"] == [str(run_id)]
    file = await http.get(f"/api/v1/report-runs/{run_id}/file", headers=admin)
    assert file.status_code == 200 and file.content.startswith(b"PK")  # an XLSX is a zip


async def test_a_definition_backfilled_twice_runs_once_per_time_for_the_month_before(http, su, settings, temporal_env):
    org = await make_org(http, su)
    admin = org.headers["org_admin"]
    body = {
        "name": "Monthly income",
        "kind": "income-statement",
        "period": "previous-month",
        "format": "json",
        "frequency": "monthly",
        "day": 3,
        "hour": 6,
    }
    assert_error(
        await http.post("/api/v1/report-definitions", headers=keyed(admin), json={**body, "frequency": "daily"}), 422
    )
    created = await http.post("/api/v1/report-definitions", headers=keyed(admin), json=body)
    assert created.status_code == 201, created.text
    definition = created.json()
    assert definition["status"] == "active" and definition["next_runs"], definition
    assert all(
        (moment := datetime.fromisoformat(t).astimezone(ZoneInfo(settings.business_timezone))).day == 3
        and moment.hour == 6
        for t in definition["next_runs"]
    )

    # Catch-up of 3 November 06:00 (business time), twice: one run of that time, for October.
    due = datetime(2026, 11, 3, 6, tzinfo=ZoneInfo(settings.business_timezone))
    schedule = temporal_env.client.get_schedule_handle(definition["schedule_id"])
    window = ScheduleBackfill(
        start_at=due - timedelta(minutes=1), end_at=due + timedelta(minutes=1), overlap=ScheduleOverlapPolicy.ALLOW_ALL
    )
    await schedule.backfill(window)
    await schedule.backfill(window)

    async def runs() -> list[dict]:
        response = await http.get("/api/v1/report-runs", headers=admin, params={"definition_id": definition["id"]})
        return response.json()["items"]

    made = await poll(runs, lambda r: len(r) == 1 and r[0]["status"] == "ready", 90, "the scheduled run never finished")
    await asyncio.sleep(3)  # the second backfill's start, if it were to make a second run, has come by now
    made = await runs()
    assert len(made) == 1, made
    assert made[0]["params"] == {"date_from": "2026-10-01", "date_to": "2026-10-31"}
    assert datetime.fromisoformat(made[0]["scheduled_for"]) == due
    report = await http.get(f"/api/v1/report-runs/{made[0]['id']}/file", headers=admin)
    assert report.json()["date_from"] == "2026-10-01" and report.json()["scope"]["org_id"] == org.id

    # Paused, the schedule starts nothing; deleted, it is gone and the definition cannot change again.
    paused = await http.post(f"/api/v1/report-definitions/{definition['id']}/pause", headers=admin)
    assert paused.json()["status"] == "paused"
    assert (await schedule.describe()).schedule.state.paused
    deleted = await http.delete(f"/api/v1/report-definitions/{definition['id']}", headers=admin)
    assert deleted.json()["status"] == "deleted"
    assert_error(
        await http.post(f"/api/v1/report-definitions/{definition['id']}/resume", headers=admin), 409, "deleted"
    )
    stranger = await make_org(http, su)
    hidden = await http.get(f"/api/v1/report-definitions/{definition['id']}", headers=stranger.headers["org_admin"])
    assert hidden.status_code == 404
