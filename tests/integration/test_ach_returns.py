"""ACH returns in every state a return can find a payment in: before settlement (tests/integration/test_ach.py),
after settlement inside the return window (the usual real-world timing), and after completion inside the
late-return window; each with PRODUCT.md §4.3's reaction, the ledger reversed once, and the bill that made the
payment told of every step.

Most of these run on a worker and API of their own whose return window (5 s) comfortably holds a return sent
0.3 s after the settlement, so a slow machine cannot push the return past the window."""

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text

from core.config import Settings
from tests.conftest import ApiServer, make_org, open_account
from tests.integration.test_ach import FINAL, balances, link_external, odfi_entries, pay, sign, wait_status
from tests.integration.test_alerts import alerts_of, subscribe
from tests.integration.test_bills import audit_actions, autopay_bill, get_bill, run_bills, run_day, wait_bill
from tests.mailbox import recipients
from tests.polling import poll
from worker import build_worker


@dataclass
class Stack:
    settings: Settings
    http: httpx.AsyncClient


@pytest.fixture(scope="module")
async def stack(temporal_env, settings, db, odfi):
    """A worker and an API with a 5 s return window and a 4 s late-return window; the sandbox returns .31/.32
    0.3 s after their settlement."""
    own = settings.model_copy(
        update={
            "task_queue": f"returns-{uuid.uuid4().hex[:8]}",
            "ach_return_window": timedelta(seconds=5),
            "ach_late_return_window": timedelta(seconds=4),
        }
    )
    before = (await odfi.get("/odfi/_control")).json()["settled_return_delay_ms"]
    await odfi.put("/odfi/_control", json={"settled_return_delay_ms": 300})
    try:
        async with (
            build_worker(temporal_env.client, own, db),
            ApiServer(own) as server,
            httpx.AsyncClient(base_url=server.url, timeout=30) as api,
        ):
            yield Stack(own, api)
            await batches_done(temporal_env.client, own.task_queue)
    finally:
        await odfi.put("/odfi/_control", json={"settled_return_delay_ms": before})


async def batches_done(client, task_queue: str) -> None:
    """Waits for this worker's ACH batches to end: a window's batch may carry other tests' payments too."""
    query = f"WorkflowType = 'AchBatchWorkflow' AND TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'"

    async def running() -> list:
        return [w.id async for w in client.list_workflows(query)]

    await poll(running, lambda ids: not ids, 60, what=lambda ids: f"ACH batches still running: {ids}")


async def funded_org(http, su, sandbox_url):
    org = await make_org(http, su)
    org.account = await open_account(http, su, org.id, org.users["member"]["id"], deposit="10000.00")
    org.external = await link_external(http, sandbox_url, org)
    return org


async def net_postings(db, payment_id: str) -> dict[str, Decimal]:
    """What one payment's journal entries did to each account, net: GL accounts by code, the member's as
    'member'; accounts that net to zero left out."""
    async with db.session() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT coalesce(a.code, 'member') AS account, sum(p.amount) AS net FROM postings p "
                    "JOIN journal_entries j ON j.id = p.entry_id JOIN ledger_accounts a ON a.id = p.account_id "
                    "WHERE j.payment_id = :p GROUP BY 1"
                ),
                {"p": uuid.UUID(payment_id)},
            )
        ).all()
    return {r.account: r.net for r in rows if r.net != 0}


async def journal_count(db, payment_id: str, entry_type: str) -> int:
    async with db.session() as session:
        return (
            await session.execute(
                text("SELECT count(*) FROM journal_entries WHERE payment_id = :p AND entry_type = :t"),
                {"p": uuid.UUID(payment_id), "t": entry_type},
            )
        ).scalar_one()


async def traces_of(db, payment_id: str) -> list[str]:
    async with db.session() as session:
        return list(
            (
                await session.execute(
                    text("SELECT trace_number FROM ach_entries WHERE payment_id = :p ORDER BY presentment"),
                    {"p": uuid.UUID(payment_id)},
                )
            ).scalars()
        )


async def bank_sends(http, settings, event: dict) -> httpx.Response:
    """A webhook as the bank signs it."""
    body = json.dumps({"event_id": f"evt-{uuid.uuid4()}", **event}).encode()
    return await http.post(
        "/api/v1/webhooks/bank", content=body, headers=sign(settings.bank_webhook_secret.get_secret_value(), body)
    )


def statuses(payment: dict) -> list[str]:
    return [e["status"] for e in payment["events"]]


ONE_PRESENTMENT = ["queued", "submitted", "pending_settlement", "settled"]


async def search_attribute_steps(client, workflow_id: str) -> list[str]:
    """Every PaymentStatus the workflow set, in order (what the Temporal UI showed over time). Other upserts (the
    SDK's TemporalChangeVersion, when a patch is first taken) do not count."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    upserts = [
        e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        for e in history.events
        if e.HasField("upsert_workflow_search_attributes_event_attributes")
    ]
    return [json.loads(fields["PaymentStatus"].data) for fields in upserts if "PaymentStatus" in fields]


async def test_r01_after_settlement_is_re_presented_then_completes(
    stack, http, su, sandbox_url, odfi, db, temporal_env
):
    org = await funded_org(http, su, sandbox_url)
    created = await pay(stack.http, org, "ach_debit", "40.31")  # the sandbox settles it, then returns R01
    done = await wait_status(stack.http, org.headers["org_admin"], created["id"], timeout=90)
    assert (done["status"], done["presentments"], done["return_code"]) == ("completed", 2, "R01"), statuses(done)
    assert statuses(done) == ["created", "validated", *ONE_PRESENTMENT, "returned", *ONE_PRESENTMENT, "completed"]
    returned = next(e for e in done["events"] if e["status"] == "returned")
    assert returned["detail"]["represent"] is True and returned["detail"]["return_code"] == "R01"
    assert returned["detail"]["when"] == "after_settlement"
    # The Temporal UI's PaymentStatus went through each step, the return included. The row is written by the
    # activity before the workflow publishes the step: wait for the workflow to have published the last one.
    steps = await poll(
        lambda: search_attribute_steps(temporal_env.client, created["workflow_id"]),
        lambda found: found[-1:] == ["completed"],
        timeout=30,
        what="the workflow's published steps",
    )
    assert steps[steps.index("settled") :] == [
        "settled",
        "returned",
        "queued",
        "pending_settlement",
        "settled",
        "completed",
    ]

    # The ledger, per payment: the first presentment's money came back once, the second one's stays.
    assert await net_postings(db, created["id"]) == {"GL-CASH": Decimal("40.31"), "member": Decimal("-40.31")}
    assert await journal_count(db, created["id"], "ach_return") == 1
    assert await balances(http, su, org.account["id"]) == ("10040.31", "0.00", "10040.31")
    # The bank got exactly two entries, each once.
    traces = await traces_of(db, created["id"])
    assert len(traces) == 2
    for trace in traces:
        assert len(await odfi_entries(odfi, trace)) == 1


async def test_the_member_hears_of_each_presentment_and_of_the_return(stack, http, su, sandbox_url):
    """record_submitted and apply_return tell the account's member after their commit: a large-transaction alert for
    each posting (both presentments and the return's reversal) and one payment-returned alert, each once."""
    org = await funded_org(http, su, sandbox_url)
    headers = org.headers["member"]
    await subscribe(http, headers, type="large_transaction", params={"above": "40.00"})
    await subscribe(http, headers, type="payment_returned")
    created = await pay(stack.http, org, "ach_debit", "40.31")  # settled, then R01, then settled again
    done = await wait_status(stack.http, org.headers["org_admin"], created["id"], timeout=90)
    assert (done["status"], done["presentments"]) == ("completed", 2), statuses(done)
    large = await poll(
        lambda: alerts_of(http, headers, type="large_transaction"), lambda items: len(items) >= 3, 30, "3 postings"
    )
    assert sorted(a["title"] for a in large) == [
        "Large transaction: -40.31 USD",
        "Large transaction: 40.31 USD",
        "Large transaction: 40.31 USD",
    ]
    returned = await poll(
        lambda: alerts_of(http, headers, type="payment_returned"), lambda items: len(items) >= 1, 30, "the return"
    )
    assert [(a["entity_id"], "R01" in a["body"]) for a in returned] == [(created["id"], True)]


async def test_a_return_after_settlement_delivered_before_its_settlement_is_still_re_presented_once(
    stack, http, su, sandbox_url, odfi, db
):
    """The bank answers in the other order: its R01 reaches us before the settlement it follows. Whichever the
    workflow sees first, the payment is re-presented once, the ledger nets to one presentment, and the other event
    is taken or set aside for an operator, never left pending."""
    org = await funded_org(http, su, sandbox_url)
    await odfi.put("/odfi/_control", json={"out_of_order": True})
    try:
        created = await pay(stack.http, org, "ach_debit", "41.31")
        done = await wait_status(stack.http, org.headers["org_admin"], created["id"], timeout=90)
    finally:
        await odfi.put("/odfi/_control", json={"out_of_order": False})
    assert (done["status"], done["presentments"]) == ("completed", 2), statuses(done)
    assert statuses(done).count("returned") == 1
    assert await net_postings(db, created["id"]) == {"GL-CASH": Decimal("41.31"), "member": Decimal("-41.31")}
    assert await journal_count(db, created["id"], "ach_return") == 1
    async with db.session() as session:
        delivery = (
            (
                await session.execute(
                    text("SELECT status FROM bank_events WHERE payment_id = :p"), {"p": uuid.UUID(created["id"])}
                )
            )
            .scalars()
            .all()
        )
    assert len(delivery) == 3 and set(delivery) <= {"delivered", "exception"}, delivery


async def test_r01_after_settlement_of_an_autopay_puts_the_bill_back_to_processing_then_paid(
    stack, http, su, sandbox_url, odfi, db, temporal_env
):
    org = await funded_org(http, su, sandbox_url)
    day = run_day()
    bill = await autopay_bill(http, org, day, "25.31")
    await run_bills(temporal_env.client, stack.settings.task_queue, day)

    paid = await wait_bill(http, org.headers["member"], bill["id"], "paid")
    payment = await wait_status(http, org.headers["org_admin"], paid["payment_id"], timeout=90)
    assert (payment["status"], payment["presentments"]) == ("completed", 2), statuses(payment)
    # Paid on the first settlement, back to processing when that presentment came back, paid again on the next.
    await poll(
        lambda: audit_actions(db, bill["id"]),
        lambda actions: actions.count("bill.paid") == 2,
        30,
        what=lambda actions: f"bill audit trail: {actions}",
    )
    assert await audit_actions(db, bill["id"]) == [
        "bill.created",
        "bill.autopay_started",
        "bill.paid",
        "bill.autopay_represented",
        "bill.paid",
    ]
    assert (await get_bill(http, org.headers["member"], bill["id"]))["status"] == "paid"


async def test_r01_after_settlement_every_time_makes_the_bill_due_again_and_ends_the_autopay(
    stack, http, su, sandbox_url, odfi, db, temporal_env, mailbox
):
    org = await funded_org(http, su, sandbox_url)
    day = run_day()
    bill = await autopay_bill(http, org, day, "26.32")  # settled, then R01, on every presentment
    await run_bills(temporal_env.client, stack.settings.task_queue, day)

    autopay = temporal_env.client.get_workflow_handle(f"bill-autopay-{bill['id']}-{day.isoformat()}")
    assert (await asyncio.wait_for(autopay.result(), timeout=120)).startswith("due again")
    again = await get_bill(http, org.headers["member"], bill["id"])
    assert again["status"] == "upcoming" and again["paid_at"] is None
    payment = (await http.get(f"/api/v1/payments/{again['payment_id']}", headers=org.headers["org_admin"])).json()
    assert (payment["status"], payment["presentments"], payment["return_code"]) == ("returned", 3, "R01")
    assert await net_postings(db, payment["id"]) == {}
    message = await mailbox.wait_for(
        lambda m: org.users["member"]["email"] in recipients(m) and m["Subject"].startswith("Auto-pay of your bill"),
        timeout=30,
    )
    assert "R01" in message.get_body(("plain",)).get_content()
    assert await audit_actions(db, bill["id"]) == [
        "bill.created",
        "bill.autopay_started",
        *["bill.paid", "bill.autopay_represented"] * 2,
        "bill.paid",
        "bill.autopay_failed",
    ]


async def test_a_return_after_completion_reverses_the_payment_and_the_bill_is_due_again(
    http, su, sandbox_url, odfi, db, temporal_env, settings, mailbox
):
    # The session's worker: a 1 s return window, so the sandbox's R10 2.5 s after settlement comes after completion.
    org = await funded_org(http, su, sandbox_url)
    day = run_day()
    bill = await autopay_bill(http, org, day, "27.10")
    await run_bills(temporal_env.client, settings.task_queue, day)

    autopay = temporal_env.client.get_workflow_handle(f"bill-autopay-{bill['id']}-{day.isoformat()}")
    assert (await asyncio.wait_for(autopay.result(), timeout=60)).startswith("due again")
    again = await get_bill(http, org.headers["member"], bill["id"])
    assert again["status"] == "upcoming" and again["paid_at"] is None
    payment = (await http.get(f"/api/v1/payments/{again['payment_id']}", headers=org.headers["org_admin"])).json()
    assert (payment["status"], payment["presentments"], payment["return_code"]) == ("reversed", 1, "R10")
    assert statuses(payment)[-3:] == ["settled", "completed", "reversed"]
    assert await net_postings(db, payment["id"]) == {}
    message = await mailbox.wait_for(
        lambda m: org.users["member"]["email"] in recipients(m) and m["Subject"].startswith("Auto-pay of your bill"),
        timeout=30,
    )
    assert "R10" in message.get_body(("plain",)).get_content()
    assert await audit_actions(db, bill["id"]) == [
        "bill.created",
        "bill.autopay_started",
        "bill.paid",
        "bill.autopay_failed",
    ]


# (state the return finds the payment in, code) -> (final status, presentments, effect on the external account)
REACTIONS = {
    ("settled", "R01"): ("completed", 2, None),  # re-presented; the new presentment settles
    ("settled", "R02"): ("returned", 1, "disabled"),
    ("settled", "R07"): ("returned", 1, "debits_blocked"),
    ("settled", "R20"): ("failed", 1, None),
    ("completed", "R09"): ("reversed", 1, None),  # after completion: reversed, never re-presented
    ("completed", "R03"): ("reversed", 1, "disabled"),
    ("completed", "R29"): ("reversed", 1, "debits_blocked"),
    ("completed", "R20"): ("reversed", 1, None),
}


async def test_the_return_reaction_table_in_each_state(stack, http, su, sandbox_url, odfi, db, settings):
    """Before settlement each code is covered by test_ach.test_every_sandbox_return_scenario; here the bank
    returns an entry that settled (inside the return window) or completed (inside the late-return window)."""

    async def case(state: str, code: str) -> None:
        org = await funded_org(http, su, sandbox_url)
        created = await pay(stack.http, org, "ach_debit", "60.00")
        reached = await wait_status(http, org.headers["org_admin"], created["id"], statuses={state, *FINAL})
        assert reached["status"] == state, (state, code, statuses(reached))
        response = await bank_sends(
            http,
            settings,
            {
                "type": "entry.returned",
                "trace_number": reached["trace_number"],
                "return_code": code,
                "return_reason": f"{code} from the test",
            },
        )
        assert response.status_code == 200, response.text

        status, presentments, effect = REACTIONS[state, code]
        done = await wait_status(
            http,
            org.headers["org_admin"],
            created["id"],
            statuses=FINAL - ({"completed"} if status != "completed" else set()),
            timeout=60,
        )
        assert (done["status"], done["presentments"], done["return_code"]) == (status, presentments, code), (
            state,
            code,
            statuses(done),
        )
        assert await journal_count(db, created["id"], "ach_return") == 1
        if status == "completed":
            assert await net_postings(db, created["id"]) == {"GL-CASH": Decimal("60.00"), "member": Decimal("-60.00")}
        else:
            assert await net_postings(db, created["id"]) == {}, (state, code)
            assert await balances(http, su, org.account["id"]) == ("10000.00", "0.00", "10000.00")
        external = (await http.get(f"/api/v1/external-accounts/{org.external['id']}", headers=su)).json()
        assert external["status"] == ("disabled" if effect == "disabled" else "verified"), (state, code)
        assert external["debits_blocked"] == (effect == "debits_blocked"), (state, code)

    await asyncio.gather(*(case(state, code) for state, code in REACTIONS))
