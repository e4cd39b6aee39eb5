"""A NACHA file that never reaches the bank: the ODFI rejects it (a 4xx), or leaves it unanswered past the upload
deadline. Its payments go back to be queued for the next window (or fail, by ACH_REJECTED_FILE_POLICY), a credit's
hold is released once when it fails, operators see the file with the bank's error, and the bank gets each entry
once in an accepted file: a rejected file is never sent again."""

import contextlib
import os
import signal
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import text

from devstack import processes
from models.payments import FileRejectedSignal
from tests.conftest import ApiServer, assert_error
from tests.integration.test_ach import balances, odfi_entries, pay, wait_status
from tests.integration.test_ach_cancel_and_crash import start_worker
from tests.polling import poll
from worker import build_worker


@contextlib.asynccontextmanager
async def bank_rejects_files(odfi, status: int = 422):
    """Every file uploaded meanwhile is refused with `status` (a 5xx plays an outage)."""
    await odfi.put("/odfi/_control", json={"reject_next_files": 1_000_000, "reject_status": status})
    try:
        yield
    finally:
        await odfi.put("/odfi/_control", json={"reject_next_files": 0, "reject_status": 422})


@contextlib.asynccontextmanager
async def own_stack(temporal_env, settings, db, **changes):
    """A worker and an API of the test's own, with other settings, on a task queue of their own."""
    own = settings.model_copy(update={"task_queue": f"files-{uuid.uuid4().hex[:8]}", **changes})
    async with (
        build_worker(temporal_env.client, own, db),
        ApiServer(own) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as api,
    ):
        yield api


def requeues(payment: dict) -> list[dict]:
    """The payment's history events that put it back in a queue after its file never reached the bank."""
    return [e for e in payment["events"] if e["status"] == "queued" and "reason" in (e["detail"] or {})]


async def wait_requeued(api, headers, payment_id: str) -> dict:
    async def fetch() -> dict:
        return (await api.get(f"/api/v1/payments/{payment_id}", headers=headers)).json()

    return await poll(
        fetch,
        lambda p: requeues(p),
        60,
        interval=0.25,
        what=lambda p: (
            f"payment {payment_id} never put back after its file was rejected: {p['status']}, "
            f"{[e['status'] for e in p['events']]}"
        ),
    )


async def entries_of(db, payment_id: str) -> list:
    async with db.session() as session:
        return (
            await session.execute(
                text(
                    "SELECT e.trace_number, e.presentment, e.rejected, f.id AS file_id, f.status AS file_status, f.error "
                    "FROM ach_entries e JOIN ach_files f ON f.id = e.file_id WHERE e.payment_id = :p ORDER BY e.created_at"
                ),
                {"p": uuid.UUID(payment_id)},
            )
        ).all()


async def hold_statuses(db, payment_id: str) -> list[str]:
    async with db.session() as session:
        return list(
            (
                await session.execute(
                    text("SELECT status FROM holds WHERE idempotency_key = :k"), {"k": f"payment:{payment_id}:hold"}
                )
            ).scalars()
        )


async def uploads(odfi, file_id) -> list[int]:
    found = (await odfi.get("/odfi/uploads", params={"key": str(file_id)})).json()["uploads"]
    return found[0]["statuses"] if found else []


async def test_a_rejected_file_puts_its_payments_back_and_the_next_file_sends_each_once(
    http, su, ach_org, odfi, db, temporal_env
):
    admin = ach_org.headers["org_admin"]
    async with bank_rejects_files(odfi):
        debit = await pay(http, ach_org, "ach_debit", "70.00")
        credit = await pay(http, ach_org, "ach_credit", "30.00")
        doomed = await pay(http, ach_org, "ach_credit", "20.00")
        for payment in (debit, credit, doomed):
            await wait_requeued(http, admin, payment["id"])

        # Queued again, a payment can be canceled again (a 409 only while it sits in the next file being rejected).
        async def cancel() -> httpx.Response:
            return await http.post(f"/api/v1/payments/{doomed['id']}/cancel", headers=admin)

        canceled = await poll(
            cancel,
            lambda r: r.status_code != 409 or r.json()["error"]["details"]["status"] != "submitted",
            60,
            "cancel of a requeued payment",
        )
        assert canceled.status_code == 200 and canceled.json()["status"] == "canceled", canceled.text
        # The batch's word told twice is one rejection.
        first_rejected = (await entries_of(db, debit["id"]))[0].file_id
        await temporal_env.client.get_workflow_handle(debit["workflow_id"]).signal(
            "file_rejected", FileRejectedSignal(file_id=first_rejected, presentment=1, error="told again")
        )

    done = {p["id"]: await wait_status(http, admin, p["id"]) for p in (debit, credit)}
    for payment_id, head in (
        (debit["id"], ["created", "validated"]),
        (credit["id"], ["created", "validated", "funds_held"]),
    ):
        payment = done[payment_id]
        assert payment["status"] == "completed", payment["events"]
        assert payment["presentments"] == 1  # a file that never reached the bank is no re-presentment
        statuses = [e["status"] for e in payment["events"]]
        assert statuses[: len(head)] == head and statuses[-3:] == ["pending_settlement", "settled", "completed"]
        middle = statuses[len(head) : -3]
        assert middle == ["queued", "submitted"] * (len(middle) // 2) and len(middle) >= 4, statuses
        entries = await entries_of(db, payment_id)
        live = [e for e in entries if not e.rejected]
        rejected = [e for e in entries if e.rejected]
        assert len(live) == 1 and live[0].file_status == "uploaded" and live[0].trace_number == payment["trace_number"]
        assert len(rejected) == len(requeues(payment)) == len(middle) // 2 - 1
        for entry in rejected:
            assert entry.file_status == "rejected" and "422" in entry.error and "FILE_REJECTED" in entry.error
            assert entry.presentment == 1
            assert await odfi_entries(odfi, entry.trace_number) == []  # the bank kept nothing of a rejected file
            assert await uploads(odfi, entry.file_id) == [422]  # and never got it again
        # The bank got the payment's entry once, in an accepted file.
        assert [e["received_count"] for e in await odfi_entries(odfi, live[0].trace_number)] == [1]

    # The credit kept its hold through the rejections and spent it once; the canceled one's was released.
    assert await hold_statuses(db, credit["id"]) == ["captured"]
    assert await hold_statuses(db, doomed["id"]) == ["released"]
    assert await balances(http, su, ach_org.account["id"]) == ("10040.00", "0.00", "10040.00")
    gone = await wait_status(http, admin, doomed["id"])
    assert gone["status"] == "canceled"
    assert all(e.rejected for e in await entries_of(db, doomed["id"]))

    # Operators see each rejected file with the bank's answer.
    shown = (await http.get("/api/v1/ach/files", headers=su, params={"status": "rejected", "limit": 200})).json()[
        "items"
    ]
    by_id = {f["id"]: f for f in shown}
    assert str(first_rejected) in by_id
    assert "FILE_REJECTED" in by_id[str(first_rejected)]["error"] and by_id[str(first_rejected)]["rejected_at"]


async def test_with_the_fail_policy_a_rejected_file_fails_its_payments_and_releases_the_hold(
    http, su, ach_org, odfi, db, settings, temporal_env
):
    admin = ach_org.headers["org_admin"]
    async with own_stack(temporal_env, settings, db, ach_rejected_file_policy="fail") as api, bank_rejects_files(odfi):
        debit = await pay(api, ach_org, "ach_debit", "70.00")
        credit = await pay(api, ach_org, "ach_credit", "30.00")
        ended = [await wait_status(api, admin, p["id"]) for p in (debit, credit)]
        for payment in ended:
            assert payment["status"] == "failed", payment["events"]
            assert payment["failure_code"] == "file_rejected"
            assert "422" in payment["failure_reason"] and "FILE_REJECTED" in payment["failure_reason"]
            assert [e["status"] for e in payment["events"]][-3:] == ["queued", "submitted", "failed"]
            error = assert_error(
                await api.post(f"/api/v1/payments/{payment['id']}/cancel", headers=admin), 409, "not_cancelable"
            )
            assert error["details"]["status"] == "failed"
            result = await temporal_env.client.get_workflow_handle(payment["workflow_id"]).result()
            assert result["status"] == "failed"
            entries = await entries_of(db, payment["id"])
            assert len(entries) == 1 and entries[0].rejected and entries[0].file_status == "rejected"
            assert await odfi_entries(odfi, entries[0].trace_number) == []
            assert await uploads(odfi, entries[0].file_id) == [422]
    assert await hold_statuses(db, credit["id"]) == ["released"]
    assert await balances(http, su, ach_org.account["id"]) == ("10000.00", "0.00", "10000.00")


async def test_a_file_unanswered_past_the_upload_deadline_is_given_up_and_its_payment_goes_in_the_next(
    http, su, ach_org, odfi, db, settings, temporal_env
):
    admin = ach_org.headers["org_admin"]
    async with own_stack(temporal_env, settings, db, ach_upload_deadline=timedelta(seconds=3)) as api:
        async with bank_rejects_files(odfi, status=503):
            debit = await pay(api, ach_org, "ach_debit", "55.00")
            await wait_requeued(api, admin, debit["id"])
        done = await wait_status(api, admin, debit["id"])
    assert done["status"] == "completed" and done["presentments"] == 1, done["events"]
    entries = await entries_of(db, debit["id"])
    given_up = [e for e in entries if e.rejected]
    live = [e for e in entries if not e.rejected]
    assert given_up and len(live) == 1 and live[0].trace_number == done["trace_number"]
    for entry in given_up:
        assert entry.file_status == "failed" and "deadline" in entry.error and "503" in entry.error
        statuses = await uploads(odfi, entry.file_id)
        assert statuses and set(statuses) == {503}  # tried again and again under its key, never accepted
        assert await odfi_entries(odfi, entry.trace_number) == []
    assert [e["received_count"] for e in await odfi_entries(odfi, live[0].trace_number)] == [1]
    assert await balances(http, su, ach_org.account["id"]) == ("10055.00", "0.00", "10055.00")


async def test_a_worker_killed_between_building_and_uploading_a_file_sends_it_once(
    http, su, ach_org, odfi, db, settings, tmp_path
):
    crash = settings.model_copy(update={"task_queue": f"files-crash-{uuid.uuid4().hex[:8]}"})
    admin = ach_org.headers["org_admin"]
    workers = [start_worker(crash, tmp_path / "worker-1.log")]
    try:
        async with ApiServer(crash) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as api:
            await odfi.put("/_control/faults", json={"latency_ms": 5000})  # the bank takes 5 s: the upload is in flight
            try:
                debit = await pay(api, ach_org, "ach_debit", "64.00")

                async def its_file():
                    async with db.session() as session:
                        return (
                            await session.execute(
                                text(
                                    "SELECT f.id, f.status FROM ach_entries e JOIN ach_files f ON f.id = e.file_id "
                                    "WHERE e.payment_id = :p"
                                ),
                                {"p": uuid.UUID(debit["id"])},
                            )
                        ).first()

                built = await poll(its_file, lambda row: row is not None, 60, "the payment's file was never built")
                assert built.status == "built"  # marked submitted, the upload not answered yet
                os.killpg(workers[0].pid, signal.SIGKILL)
                workers[0].wait(timeout=30)
            finally:
                await odfi.put("/_control/faults", json={"latency_ms": 0})
            workers.append(start_worker(crash, tmp_path / "worker-2.log"))
            done = await wait_status(api, admin, debit["id"], timeout=120)
    finally:
        for worker in workers:
            processes.stop(worker)
    assert done["status"] == "completed" and done["presentments"] == 1, done["events"]
    entries = await entries_of(db, debit["id"])
    assert [(e.file_id, e.rejected, e.file_status) for e in entries] == [(built.id, False, "uploaded")]
    # Uploaded again by the next worker under the same key: one file at the bank, the entry received once.
    assert len((await odfi.get("/odfi/files", params={"key": str(built.id)})).json()["files"]) == 1
    assert (await uploads(odfi, built.id)).count(201) == 1
    assert [e["received_count"] for e in await odfi_entries(odfi, done["trace_number"])] == [1]
