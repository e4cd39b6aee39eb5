"""Bills through the API, and the daily run (BillRunWorkflow started on a worker's task queue with an explicit day):
overdue marking, reminders exactly once per bill and offset across repeated runs and a SIGKILLed worker, auto-pay
by a real ACH debit through the sandbox ODFI, paid on settlement or due again on a return."""

import asyncio
import os
import signal
import uuid
from datetime import date, datetime, timedelta
from itertools import count
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from devstack import processes
from models.bills import AutopayInput, BillRunInput, BillRunResult
from tests.conftest import assert_error, make_org, make_user, open_account
from tests.integration.test_ach import link_external
from tests.mailbox import recipients
from tests.polling import poll
from workflows.bill_autopay import BillAutopayWorkflow
from workflows.bill_run import BillRunWorkflow

# Each test works on its own far-future days, so a run of one test's day reminds nobody else's bills.
_days = count()


def run_day() -> date:
    return date(2031, 1, 5) + timedelta(days=120 * next(_days))


async def run_bills(client, task_queue: str, day: date, **extra) -> BillRunResult:
    return await client.execute_workflow(
        BillRunWorkflow.run, BillRunInput(day=day, **extra), id=f"bill-run-{uuid.uuid4()}", task_queue=task_queue
    )


def start_worker(settings, log_path, smtp_port: int):
    """A worker in its own process (so it can be SIGKILLed), mailing to smtp_port."""
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
            "BILL_BATCH_SIZE": str(settings.bill_batch_size),
        },
        log_path=log_path,
    )
    processes.wait_for_port(port, child, name="worker")
    return child


async def add_bill(http, headers, due: date, amount: str = "84.20", payee: str = "City Power", **extra) -> dict:
    response = await http.post(
        "/api/v1/bills",
        headers=headers,
        json={"payee_name": payee, "amount": amount, "due_date": due.isoformat(), **extra},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def get_bill(http, headers, bill_id: str) -> dict:
    response = await http.get(f"/api/v1/bills/{bill_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def wait_bill(http, headers, bill_id: str, status: str, timeout: float = 60) -> dict:
    return await poll(
        lambda: get_bill(http, headers, bill_id),
        lambda bill: bill["status"] == status,
        timeout,
        interval=0.25,
        what=lambda bill: f"bill {bill_id} is {bill['status']}, not {status}",
    )


async def audit_actions(db, bill_id: str) -> list[str]:
    async with db.session() as session:
        return list(
            (
                await session.execute(
                    text("SELECT action FROM audit_log WHERE entity_type = 'bill' AND entity_id = :id ORDER BY id"),
                    {"id": bill_id},
                )
            ).scalars()
        )


def reminders_to(mailbox, address: str) -> list[str]:
    return sorted(m["Subject"] for m in mailbox.to(address) if m["Subject"].startswith("Bill due"))


async def test_bill_crud_filters_scoping_and_validation(http, su, db, mailbox, settings):
    org, other = await make_org(http, su), await make_org(http, su)
    member, admin = org.headers["member"], org.headers["org_admin"]
    member_id = org.users["member"]["id"]
    day = run_day()

    own = await add_bill(http, member, day, memo="November")
    assert own["status"] == "upcoming" and own["payer_id"] == member_id and own["org_id"] == org.id
    assert own["amount"] == "84.20" and own["autopay"] is False and own["payment_id"] is None
    for_member = await add_bill(http, admin, day + timedelta(days=10), "12.00", "Water Co", payer_id=member_id)
    assert for_member["payer_id"] == member_id and for_member["created_by"] == org.users["org_admin"]["id"]
    neighbour, _ = await make_user(http, su, "member", org.id)
    admins_own = await add_bill(http, admin, day + timedelta(days=20), "5.00", "Phone", payer_id=neighbour["id"])

    # Bad input: a clear 4xx and nothing written.
    async with db.session() as session:
        before = (await session.execute(text("SELECT count(*) FROM bills"))).scalar_one()
    base = {"payee_name": "X", "amount": "10.00", "due_date": day.isoformat()}
    for body, status, code in [
        ({**base, "amount": "-1"}, 422, "validation_error"),
        ({**base, "amount": "1.001"}, 422, "validation_error"),
        ({**base, "payee_name": "  "}, 422, "validation_error"),
        ({**base, "colour": "red"}, 422, "validation_error"),
        ({**base, "due_date": "2020-01-01"}, 422, "due_date_in_past"),
        ({**base, "autopay": True}, 422, "autopay_accounts_required"),
        # a member naming someone else: a 404 like an unknown id (a member sees no other user)
        ({**base, "payer_id": org.users["operator"]["id"]}, 404, "not_found"),
        ({**base, "account_id": str(uuid.uuid4())}, 404, "not_found"),
    ]:
        assert_error(await http.post("/api/v1/bills", headers=member, json=body), status, code)
    assert_error(
        await http.post("/api/v1/bills", headers=admin, json={**base, "payer_id": other.users["member"]["id"]}),
        404,
        "not_found",
    )
    assert_error(
        await http.post("/api/v1/bills", headers=org.headers["operator"], json={**base, "payer_id": member_id}),
        403,
        "forbidden",
    )
    assert_error(await http.post("/api/v1/bills", headers=admin, json=base), 422, "invalid_payer")  # not a member
    assert_error(await http.post("/api/v1/bills", json=base), 401)
    async with db.session() as session:
        assert (await session.execute(text("SELECT count(*) FROM bills"))).scalar_one() == before

    # Scoping: the member sees theirs, the org's staff the org's, another org nothing.
    def ids(page):
        return {b["id"] for b in page["items"]}

    assert ids((await http.get("/api/v1/bills", headers=member)).json()) == {own["id"], for_member["id"]}
    assert ids((await http.get("/api/v1/bills", headers=org.headers["operator"])).json()) == {
        own["id"],
        for_member["id"],
        admins_own["id"],
    }
    assert (await http.get("/api/v1/bills", headers=other.headers["org_admin"])).json()["total"] == 0
    assert_error(await http.get(f"/api/v1/bills/{own['id']}", headers=other.headers["member"]), 404, "not_found")
    assert_error(await http.get(f"/api/v1/bills/{admins_own['id']}", headers=member), 404)
    assert_error(await http.put(f"/api/v1/bills/{own['id']}/pay", headers=org.headers["operator"]), 403)

    # Filters and pagination, ordered by due date.
    page = (await http.get("/api/v1/bills", headers=admin, params={"limit": 2})).json()
    assert page["total"] == 3 and [b["id"] for b in page["items"]] == [own["id"], for_member["id"]]
    window = {"due_from": (day + timedelta(days=5)).isoformat(), "due_to": (day + timedelta(days=10)).isoformat()}
    assert ids((await http.get("/api/v1/bills", headers=admin, params=window)).json()) == {for_member["id"]}
    assert ids(
        (await http.get("/api/v1/bills", headers=admin, params={"payer_id": member_id, "status": "upcoming"})).json()
    ) == {own["id"], for_member["id"]}
    assert_error(await http.get("/api/v1/bills", headers=admin, params={"status": "lost"}), 422, "validation_error")
    assert_error(
        await http.get("/api/v1/bills", headers=admin, params={"due_from": "2031-02-01", "due_to": "2031-01-01"}),
        422,
        "invalid_range",
    )

    # Replace, then pay by hand (twice is once); a paid bill is neither edited nor canceled.
    changed = await http.put(
        f"/api/v1/bills/{own['id']}",
        headers=member,
        json={"payee_name": "City Power & Light", "amount": "90.10", "due_date": (day + timedelta(days=1)).isoformat()},
    )
    assert changed.status_code == 200, changed.text
    assert (
        changed.json()["amount"] == "90.10" and changed.json()["memo"] == "" and changed.json()["status"] == "upcoming"
    )
    assert_error(
        await http.put(f"/api/v1/bills/{own['id']}", headers=member, json={**base, "due_date": "2021-03-04"}),
        422,
        "due_date_in_past",
    )
    paid = await http.put(f"/api/v1/bills/{own['id']}/pay", headers=member)
    assert paid.status_code == 200 and paid.json()["status"] == "paid" and paid.json()["paid_at"]
    again = await http.put(f"/api/v1/bills/{own['id']}/pay", headers=member)
    assert again.json()["paid_at"] == paid.json()["paid_at"]
    assert_error(await http.put(f"/api/v1/bills/{own['id']}", headers=member, json=base), 409, "bill_not_editable")
    assert_error(await http.delete(f"/api/v1/bills/{own['id']}", headers=member), 409, "bill_not_cancelable")
    assert_error(await http.post(f"/api/v1/bills/{own['id']}/send-reminder", headers=admin), 409, "bill_not_due")

    # Cancel (soft, twice is once): gone from the default list, there under status=canceled, no longer payable.
    assert (await http.delete(f"/api/v1/bills/{admins_own['id']}", headers=admin)).status_code == 204
    assert (await http.delete(f"/api/v1/bills/{admins_own['id']}", headers=admin)).status_code == 204
    assert admins_own["id"] not in ids((await http.get("/api/v1/bills", headers=admin)).json())
    assert ids((await http.get("/api/v1/bills", headers=admin, params={"status": "canceled"})).json()) == {
        admins_own["id"]
    }
    assert_error(await http.put(f"/api/v1/bills/{admins_own['id']}/pay", headers=admin), 409, "bill_not_payable")
    assert ids((await http.get("/api/v1/bills", headers=admin, params={"status": "paid"})).json()) == {own["id"]}

    # Every change audited, with before and after.
    assert await audit_actions(db, own["id"]) == ["bill.created", "bill.updated", "bill.paid"]
    assert await audit_actions(db, admins_own["id"]) == ["bill.created", "bill.canceled"]
    log = (
        await http.get("/api/v1/audit", headers=su, params={"entity_id": own["id"], "action": "bill.updated"})
    ).json()
    entry = log["items"][0]
    assert entry["before"]["amount"] == "84.20" and entry["after"]["amount"] == "90.10"

    # A reminder by hand: the payer is told in-app and by email; again at once is refused with Retry-After.
    sent = await http.post(f"/api/v1/bills/{for_member['id']}/send-reminder", headers=admin)
    assert sent.status_code == 200, sent.text
    assert sent.json()["sent_to"] == 1
    message = await mailbox.wait_for(lambda m: org.users["member"]["email"] in recipients(m))
    days_left = (day + timedelta(days=10) - datetime.now(ZoneInfo(settings.business_timezone)).date()).days
    assert message["Subject"] == f"Bill due in {days_left} days: Water Co $12.00"
    assert "Water Co" in message.get_body(("html",)).get_content()
    mine = (await http.get("/api/v1/notifications", headers=member)).json()["items"]
    assert [(n["kind"], n["entity_id"]) for n in mine] == [("bill_reminder_manual", for_member["id"])]
    limited = await http.post(f"/api/v1/bills/{for_member['id']}/send-reminder", headers=admin)
    assert_error(limited, 429, "reminded_recently")
    assert int(limited.headers["Retry-After"]) > 0
    assert len(mailbox.to(org.users["member"]["email"])) == 1
    assert await audit_actions(db, for_member["id"]) == ["bill.created", "bill.reminder_sent"]


async def test_the_run_marks_past_due_bills_overdue_once(http, su, db, temporal_env, settings):
    org = await make_org(http, su)
    member = org.headers["member"]
    day = run_day()
    past_due = await add_bill(http, member, day - timedelta(days=1))
    due_today = await add_bill(http, member, day)
    paid = await add_bill(http, member, day - timedelta(days=2))
    await http.put(f"/api/v1/bills/{paid['id']}/pay", headers=member)

    result = await run_bills(temporal_env.client, settings.task_queue, day)
    assert result.day == day and result.overdue_marked >= 1
    assert (await get_bill(http, member, past_due["id"]))["status"] == "overdue"
    assert (await get_bill(http, member, due_today["id"]))["status"] == "upcoming"
    assert (await get_bill(http, member, paid["id"]))["status"] == "paid"
    overdue = (await http.get("/api/v1/bills", headers=member, params={"status": "overdue"})).json()
    assert [b["id"] for b in overdue["items"]] == [past_due["id"]]

    again = await run_bills(temporal_env.client, settings.task_queue, day)
    assert again.overdue_marked == 0

    # Started as a schedule starts it (the time zone alone), the run is for the local day it was meant to start.
    handle = await temporal_env.client.start_workflow(
        "BillRunWorkflow",
        {"timezone": "Pacific/Auckland"},
        id=f"bill-run-{uuid.uuid4()}",
        task_queue=settings.task_queue,
        result_type=BillRunResult,
    )
    assert (await handle.result()).day == datetime.now(ZoneInfo("Pacific/Auckland")).date()
    assert await audit_actions(db, past_due["id"]) == ["bill.created", "bill.overdue"]

    # An overdue bill given a new due date is upcoming again.
    moved = await http.put(
        f"/api/v1/bills/{past_due['id']}",
        headers=member,
        json={"payee_name": "City Power", "amount": "84.20", "due_date": (day + timedelta(days=3)).isoformat()},
    )
    assert moved.status_code == 200 and moved.json()["status"] == "upcoming"


class BlackHoleSmtp:
    """Accepts connections and never answers: an email send hangs there, after its reminder was claimed."""

    async def __aenter__(self):
        self.connections = 0

        async def hold(reader, writer):
            self.connections += 1
            await reader.read()  # until the peer goes away

        self.server = await asyncio.start_server(hold, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()


async def wait_for_claims(db, bill_ids: list[str], expected: int, timeout: float = 30) -> None:
    async def claimed() -> int:
        async with db.session() as session:
            return (
                await session.execute(
                    text("SELECT count(*) FROM bill_reminders WHERE bill_id = ANY(:ids)"),
                    {"ids": [uuid.UUID(i) for i in bill_ids]},
                )
            ).scalar_one()

    await poll(
        claimed, lambda n: n == expected, timeout, interval=0.1, what=lambda n: f"{n} of {expected} reminders claimed"
    )


async def test_reminders_go_once_per_offset_across_a_crash_and_repeated_runs(
    http, su, db, temporal_env, settings, mailbox, tmp_path
):
    assert settings.bill_reminder_offsets == [7, 3, 0]
    org = await make_org(http, su)
    member, address = org.headers["member"], org.users["member"]["email"]
    day = run_day()
    bills = [await add_bill(http, member, day + timedelta(days=d), f"{10 + d}.00", f"Payee {d}") for d in (7, 3, 0, 5)]
    reminded = [b["id"] for b in bills[:3]]
    queue = f"bills-crash-{uuid.uuid4().hex[:8]}"
    crash = settings.model_copy(update={"task_queue": queue})

    # The first run's worker mails into a black hole: it claims its first batch of reminders (two bills), then
    # hangs sending them. Kill it.
    workers = []
    try:
        async with BlackHoleSmtp() as hole:
            workers.append(start_worker(crash, tmp_path / "worker-1.log", smtp_port=hole.port))
            handle = await temporal_env.client.start_workflow(
                BillRunWorkflow.run, BillRunInput(day=day), id=f"bill-run-crash-{uuid.uuid4()}", task_queue=queue
            )
            await wait_for_claims(db, reminded, settings.bill_batch_size)
            for _ in range(50):
                if hole.connections:
                    break
                await asyncio.sleep(0.1)
            assert hole.connections, "the worker never tried to send"
            os.killpg(workers[0].pid, signal.SIGKILL)
            workers[0].wait(timeout=30)
        assert reminders_to(mailbox, address) == []
        async with db.session() as session:
            pending = (
                await session.execute(
                    text(
                        "SELECT count(*) FROM email_outbox WHERE dedupe_key LIKE 'bill-reminder:%' AND status = 'pending' "
                        "AND to_address = :a"
                    ),
                    {"a": address},
                )
            ).scalar_one()
        assert pending == settings.bill_batch_size == 2

        # A new worker finishes the run: the claimed reminders are sent, the rest claimed and sent, each once.
        workers.append(start_worker(crash, tmp_path / "worker-2.log", smtp_port=mailbox.port))
        result = await asyncio.wait_for(handle.result(), timeout=90)
        assert result.reminders_sent == 3
        assert await handle.query(BillRunWorkflow.progress) == {
            "stage": "done",
            "overdue": result.overdue_marked,
            "reminders": 3,
            "autopay": 0,
            "due_alerts": result.due_alerts_signalled,
        }
    finally:
        for worker in workers:
            processes.stop(worker)  # SIGTERM, then SIGKILL: a worker slow to stop must not hang the suite
    expected = [
        "Bill due in 3 days: Payee 3 $13.00",
        "Bill due in 7 days: Payee 7 $17.00",
        "Bill due today: Payee 0 $10.00",
    ]
    assert reminders_to(mailbox, address) == expected

    # The same day again, on the usual worker: nothing new is claimed, written or sent.
    again = await run_bills(temporal_env.client, settings.task_queue, day)
    assert again.reminders_sent == 0
    assert reminders_to(mailbox, address) == expected
    notices = (await http.get("/api/v1/notifications", headers=member)).json()["items"]
    assert sorted(n["entity_id"] for n in notices if n["kind"] == "bill_reminder") == sorted(reminded)

    # Four days later the bill due in 7 has its 3-day reminder, once however often the day runs (here in runs
    # that continue as new after every batch, carrying their cursor and totals).
    later = day + timedelta(days=4)
    assert (await run_bills(temporal_env.client, settings.task_queue, later, max_batches=1)).reminders_sent == 1
    assert (await run_bills(temporal_env.client, settings.task_queue, later, max_batches=1)).reminders_sent == 0
    assert reminders_to(mailbox, address) == sorted([*expected, "Bill due in 3 days: Payee 7 $17.00"])
    async with db.session() as session:
        claims = (
            await session.execute(
                text(
                    "SELECT b.payee_name, r.offset_days FROM bill_reminders r JOIN bills b ON b.id = r.bill_id "
                    "WHERE r.bill_id = ANY(:ids) ORDER BY 1, 2"
                ),
                {"ids": [uuid.UUID(b["id"]) for b in bills]},
            )
        ).all()
    assert [tuple(c) for c in claims] == [("Payee 0", 0), ("Payee 3", 3), ("Payee 7", 3), ("Payee 7", 7)]


@pytest.fixture
async def autopay_org(http, su, sandbox_url, odfi):
    org = await make_org(http, su)
    org.account = await open_account(http, su, org.id)  # the biller's account the debits are credited to
    org.external = await link_external(http, sandbox_url, org)
    return org


async def autopay_bill(http, org, due: date, amount: str) -> dict:
    return await add_bill(
        http,
        org.headers["org_admin"],
        due,
        amount,
        "Gym membership",
        autopay=True,
        payer_id=org.users["member"]["id"],
        external_account_id=org.external["id"],
        account_id=org.account["id"],
    )


async def test_autopay_validation(http, autopay_org):
    org, day = autopay_org, run_day()
    base = {
        "payee_name": "Gym",
        "amount": "20.00",
        "due_date": day.isoformat(),
        "autopay": True,
        "payer_id": org.users["member"]["id"],
        "external_account_id": org.external["id"],
        "account_id": org.account["id"],
    }
    admin = org.headers["org_admin"]
    assert_error(
        await http.post("/api/v1/bills", headers=admin, json={**base, "amount": "25000.01"}), 422, "limit_exceeded"
    )
    assert_error(
        await http.post("/api/v1/bills", headers=admin, json={**base, "external_account_id": str(uuid.uuid4())}),
        404,
        "not_found",
    )
    # A member cannot make the organization's bank account pay their bills, nor raise what it debits; they may
    # change the rest of a bill an admin set up.
    member, member_body = org.headers["member"], {k: v for k, v in base.items() if k != "payer_id"}
    assert_error(await http.post("/api/v1/bills", headers=member, json=member_body), 403, "forbidden")
    bill = (await http.post("/api/v1/bills", headers=admin, json=base)).json()
    assert_error(
        await http.put(f"/api/v1/bills/{bill['id']}", headers=member, json={**member_body, "amount": "99.00"}),
        403,
        "forbidden",
    )
    memo = await http.put(f"/api/v1/bills/{bill['id']}", headers=member, json={**member_body, "memo": "front desk"})
    assert memo.status_code == 200 and memo.json()["memo"] == "front desk" and memo.json()["autopay"] is True


async def test_autopay_debits_by_ach_and_marks_the_bill_paid_on_settlement(
    http, su, db, temporal_env, settings, autopay_org, mailbox
):
    org, day = autopay_org, run_day()
    bill = await autopay_bill(http, org, day, "42.00")
    settled_by_hand = await autopay_bill(http, org, day, "43.00")
    await http.put(f"/api/v1/bills/{settled_by_hand['id']}/pay", headers=org.headers["member"])
    result = await run_bills(temporal_env.client, settings.task_queue, day)
    assert result.autopays_started >= 1

    # A bill paid by hand before its due day is not debited; were its auto-pay started anyway (paid by hand just
    # after the run picked it), the workflow would find the bill paid under its lock and debit nothing.
    skipped = await temporal_env.client.execute_workflow(
        BillAutopayWorkflow.run,
        AutopayInput(bill_id=settled_by_hand["id"], due_date=day, late_return_window_seconds=1),
        id=f"bill-autopay-race-{uuid.uuid4()}",
        task_queue=settings.task_queue,
    )
    assert skipped == "skipped: the bill is paid"
    assert (await get_bill(http, org.headers["member"], settled_by_hand["id"]))["payment_id"] is None

    paid = await wait_bill(http, org.headers["member"], bill["id"], "paid")
    assert paid["paid_at"] and paid["payment_id"]
    payment = (await http.get(f"/api/v1/payments/{paid['payment_id']}", headers=org.headers["org_admin"])).json()
    assert payment["kind"] == "ach_debit" and payment["amount"] == "42.00"
    assert payment["status"] in ("settled", "completed") and payment["external_account_id"] == org.external["id"]
    assert await audit_actions(db, bill["id"]) == ["bill.created", "bill.autopay_started", "bill.paid"]
    # The due-day reminder said auto-pay would take care of it.
    reminder = await mailbox.wait_for(
        lambda m: (
            org.users["member"]["email"] in recipients(m) and m["Subject"] == "Bill due today: Gym membership $42.00"
        )
    )
    assert "Auto-pay is on" in reminder.get_body(("plain",)).get_content()

    # The day again: the same auto-pay workflow (its id is the bill and due date), no second debit.
    await run_bills(temporal_env.client, settings.task_queue, day)
    description = await temporal_env.client.get_workflow_handle(
        f"bill-autopay-{bill['id']}-{day.isoformat()}"
    ).describe()
    assert (await description.static_summary()) == f"Auto-pay $42.00 to Gym membership, due {day}"
    async with db.session() as session:
        debits = (
            await session.execute(
                text("SELECT count(*) FROM payments WHERE idempotency_key = :k"),
                {"k": f"bill-autopay:{bill['id']}:{day.isoformat()}"},
            )
        ).scalar_one()
    assert debits == 1
    assert (await get_bill(http, org.headers["member"], bill["id"]))["status"] == "paid"


async def test_a_returned_autopay_puts_the_bill_back_to_due_and_tells_the_payer(
    http, su, db, temporal_env, settings, autopay_org, mailbox
):
    org, day = autopay_org, run_day()
    bill = await autopay_bill(http, org, day, "31.03")  # the sandbox returns .03 as R03
    await run_bills(temporal_env.client, settings.task_queue, day)

    message = await mailbox.wait_for(
        lambda m: org.users["member"]["email"] in recipients(m) and m["Subject"].startswith("Auto-pay of your bill"),
        timeout=60,
    )
    assert message["Subject"] == "Auto-pay of your bill to Gym membership ($31.03) did not go through"
    assert "R03" in message.get_body(("plain",)).get_content()
    again = await get_bill(http, org.headers["member"], bill["id"])
    assert again["status"] == "upcoming" and again["paid_at"] is None  # due in the future: upcoming, not overdue
    payment = (await http.get(f"/api/v1/payments/{again['payment_id']}", headers=org.headers["org_admin"])).json()
    assert payment["status"] == "returned" and payment["return_code"] == "R03"
    notices = (await http.get("/api/v1/notifications", headers=org.headers["member"])).json()["items"]
    assert [n["entity_id"] for n in notices if n["kind"] == "bill_autopay_failed"] == [bill["id"]]
    assert await audit_actions(db, bill["id"]) == ["bill.created", "bill.autopay_started", "bill.autopay_failed"]

    # Due again: the member can settle it by hand now.
    paid = await http.put(f"/api/v1/bills/{bill['id']}/pay", headers=org.headers["member"])
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
