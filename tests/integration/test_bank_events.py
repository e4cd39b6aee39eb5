"""The bank-event outbox: the webhook answers 2xx once an event is recorded, whatever the payment's workflow is
doing (or whether Temporal answers at all); delivery is a separate, retried step; an event no open workflow can
take goes to the operators' exception list, and a return after the late-return window reverses the payment by
policy, once."""

import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text
from temporalio.testing import ActivityEnvironment

from activities.ach import AchActivities
from activities.bank_events import BankEventActivities
from models.ach import BankEventDelivery
from tests.conftest import ApiServer, assert_error, make_org
from tests.integration.test_ach import balances, pay, wait_status
from tests.integration.test_ach_returns import (
    Stack,
    bank_sends,
    batches_done,
    funded_org,
    journal_count,
    net_postings,
    statuses,
)
from tests.polling import poll
from worker import build_worker


@pytest.fixture(scope="module")
async def outbox(temporal_env, settings, db, odfi):
    """A worker and an API whose payments end soon after completion (1 s return window, 2 s late-return window),
    and whose sweep delivers every pending event at once."""
    own = settings.model_copy(
        update={
            "task_queue": f"outbox-{uuid.uuid4().hex[:8]}",
            "ach_return_window": timedelta(seconds=1),
            "ach_late_return_window": timedelta(seconds=2),
            "bank_event_sweep_grace": timedelta(0),
        }
    )
    async with (
        build_worker(temporal_env.client, own, db),
        ApiServer(own) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as api,
    ):
        yield Stack(own, api)
        await batches_done(temporal_env.client, own.task_queue)


async def events_of(http, headers, payment_id: str, **filters) -> list[dict]:
    response = await http.get("/api/v1/bank-events", headers=headers, params={"payment_id": payment_id, **filters})
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def wait_events(http, headers, payment_id: str, count: int, **filters) -> list[dict]:
    return await poll(
        lambda: events_of(http, headers, payment_id, **filters),
        lambda items: len(items) >= count,
        30,
        what=lambda items: f"bank events of {payment_id} ({filters}): {items}",
    )


async def test_a_settlement_after_the_payment_was_returned_and_closed_goes_to_the_exception_list(
    http, su, sandbox_url, odfi, db, settings, temporal_env
):
    org = await funded_org(http, su, sandbox_url)
    returned = await wait_status(http, org.headers["org_admin"], (await pay(http, org, "ach_debit", "40.02"))["id"])
    assert returned["status"] == "returned"
    await temporal_env.client.get_workflow_handle(returned["workflow_id"]).result()  # the workflow has ended

    # The bank's settlement comes after all (as in the chaos run): recorded and answered, not refused.
    response = await bank_sends(
        http,
        settings,
        {"type": "entry.settled", "trace_number": returned["trace_number"], "settlement_date": "2031-01-06"},
    )
    assert response.status_code == 200, response.text
    [listed] = await wait_events(http, org.headers["operator"], returned["id"], 1, status="exception")
    assert listed["type"] == "entry.settled" and listed["payment_id"] == returned["id"]
    assert "settlement for a payment already returned" in listed["detail"]
    # The payment is untouched.
    again = (await http.get(f"/api/v1/payments/{returned['id']}", headers=org.headers["org_admin"])).json()
    assert again["status"] == "returned" and statuses(again) == statuses(returned)
    assert await balances(http, su, org.account["id"]) == ("10000.00", "0.00", "10000.00")

    # Who sees it: the organization's operators and admins, superusers; not another organization, not members.
    assert [e["id"] for e in await events_of(http, org.headers["org_admin"], returned["id"], status="exception")] == [
        listed["id"]
    ]
    assert [e["id"] for e in await events_of(http, su, returned["id"], status="exception")] == [listed["id"]]
    other = await make_org(http, su, roles=("operator",))
    assert await events_of(http, other.headers["operator"], returned["id"]) == []
    assert_error(await http.get(f"/api/v1/bank-events/{listed['id']}", headers=other.headers["operator"]), 404)
    assert_error(await http.get("/api/v1/bank-events", headers=org.headers["member"]), 403)

    # An operator resolves it with a note: audited, once.
    resolve = f"/api/v1/bank-events/{listed['id']}/resolve"
    assert_error(await http.post(resolve, headers=other.headers["operator"], json={"note": "not mine"}), 404)
    assert_error(await http.post(resolve, headers=org.headers["operator"], json={"note": ""}), 422)
    resolved = await http.post(
        resolve, headers=org.headers["operator"], json={"note": "The bank confirmed the R02 stands; nothing moved."}
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    assert resolved.json()["resolved_by"] == org.users["operator"]["id"]
    assert_error(
        await http.post(resolve, headers=org.headers["operator"], json={"note": "again"}), 409, "not_an_exception"
    )
    assert await events_of(http, org.headers["operator"], returned["id"], status="exception") == []
    async with db.session() as session:
        audited = (
            await session.execute(
                text(
                    "SELECT actor_id, before, after FROM audit_log WHERE action = 'bank_event.resolved' AND entity_id = :id"
                ),
                {"id": str(listed["id"])},
            )
        ).all()
    assert len(audited) == 1 and str(audited[0].actor_id) == org.users["operator"]["id"]
    assert audited[0].before["status"] == "exception" and audited[0].after["status"] == "resolved"


async def test_an_event_for_a_presentment_already_returned_is_set_aside_while_the_payment_goes_on(
    http, su, sandbox_url, odfi, settings
):
    org = await funded_org(http, su, sandbox_url)
    created = await pay(http, org, "ach_debit", "40.01")  # R01 every time: re-presented twice, then returned
    first = (
        await poll(
            lambda: http.get(f"/api/v1/payments/{created['id']}", headers=org.headers["org_admin"]),
            lambda r: "returned" in statuses(r.json()),
            30,
            what="the first return",
        )
    ).json()
    first_trace = next(e["detail"]["trace_number"] for e in first["events"] if e["status"] == "submitted")
    response = await bank_sends(
        http, settings, {"type": "entry.settled", "trace_number": first_trace, "settlement_date": "2031-01-06"}
    )
    assert response.status_code == 200, response.text
    [listed] = await wait_events(http, org.headers["operator"], created["id"], 1, status="exception")
    assert "already returned" in listed["detail"]
    done = await wait_status(http, org.headers["org_admin"], created["id"])
    assert (done["status"], done["presentments"]) == ("returned", 3)
    assert await balances(http, su, org.account["id"]) == ("10000.00", "0.00", "10000.00")


async def test_a_return_after_the_late_return_window_reverses_the_payment_by_policy_once(
    outbox, http, su, sandbox_url, odfi, db, settings, temporal_env, mailbox
):
    org = await funded_org(http, su, sandbox_url)
    subscribed = await http.post(
        "/api/v1/alert-subscriptions", headers=org.headers["member"], json={"type": "payment_returned"}
    )
    assert subscribed.status_code == 201, subscribed.text
    created = await pay(outbox.http, org, "ach_debit", "50.00")
    completed = await wait_status(http, org.headers["org_admin"], created["id"], timeout=60)
    assert completed["status"] == "completed"
    await temporal_env.client.get_workflow_handle(created["workflow_id"]).result()  # the late-return window closed

    late = {
        "event_id": f"evt-{uuid.uuid4()}",
        "type": "entry.returned",
        "trace_number": completed["trace_number"],
        "return_code": "R10",
        "return_reason": "Customer advises not authorized",
    }
    first = await bank_sends(http, settings, late)
    again = await bank_sends(http, settings, late)  # the bank delivers it twice
    assert (first.status_code, again.status_code) == (200, 200), (first.text, again.text)
    assert (first.json()["status"], again.json()["status"]) == ("accepted", "duplicate")
    reversed_ = await wait_status(http, org.headers["org_admin"], created["id"], statuses={"reversed"}, timeout=30)
    assert reversed_["return_code"] == "R10" and statuses(reversed_)[-2:] == ["completed", "reversed"]

    # Another return of the same entry has nothing left to reverse: an exception, not a second reversal.
    other = await bank_sends(
        http,
        settings,
        {
            "type": "entry.returned",
            "trace_number": completed["trace_number"],
            "return_code": "R01",
            "return_reason": "Insufficient funds",
        },
    )
    assert other.status_code == 200
    [exception] = await wait_events(http, org.headers["operator"], created["id"], 1, status="exception")
    assert "a return for a payment already reversed" in exception["detail"]
    [applied] = await events_of(http, org.headers["operator"], created["id"], status="applied")
    assert applied["event_id"] == late["event_id"] and "reversed by policy" in applied["detail"]

    # The ledger reversed exactly once, balanced; debits blocked (R10); the org admins told.
    assert await journal_count(db, created["id"], "ach_return") == 1
    assert await net_postings(db, created["id"]) == {}
    assert await balances(http, su, org.account["id"]) == ("10000.00", "0.00", "10000.00")
    external = (await http.get(f"/api/v1/external-accounts/{org.external['id']}", headers=su)).json()
    assert external["debits_blocked"] is True
    email = await mailbox.wait_for(lambda m: created["id"] in m.get_body(("plain",)).get_content(), timeout=30)
    assert email["To"] == org.users["org_admin"]["email"] and "R10" in email.get_body(("plain",)).get_content()
    final = (await http.get(f"/api/v1/payments/{created['id']}", headers=org.headers["org_admin"])).json()
    assert final["status"] == "reversed" and statuses(final).count("reversed") == 1
    # The member's payment_returned alert, once, as for a return within the window.
    alerts = await poll(
        lambda: member_alerts(http, org.headers["member"]), lambda items: len(items) >= 1, 15, "the member's alert"
    )
    assert [(a["type"], a["entity_id"]) for a in alerts] == [("payment_returned", created["id"])]
    assert "R10" in alerts[0]["body"]
    # The delivery retried after its commit (its signal lost with a worker): the applied event tells the member
    # again. The alert row removed first, so only a new evaluation can bring it back, once.
    async with db.session() as session, session.begin():
        await session.execute(text("DELETE FROM member_alerts WHERE id = :id"), {"id": alerts[0]["id"]})
    steps = BankEventActivities(
        db, outbox.settings, temporal_env.client, AchActivities(db, outbox.settings, temporal_env.client)
    )
    retried = await ActivityEnvironment(temporal_env.client).run(
        steps.deliver_bank_event, BankEventDelivery(event_id=late["event_id"])
    )
    # ...and answers as the first attempt did, so the workflow still tells the org admins (deduplicated by key).
    assert (retried.status, retried.org_id, retried.presentment) == ("applied", uuid.UUID(org.id), 1)
    assert retried.notice is not None and retried.notice["return_code"] == "R10"
    assert retried.notice["payment_id"] == created["id"]
    again = await poll(lambda: member_alerts(http, org.headers["member"]), lambda items: len(items) >= 1, 15, "again")
    assert [(a["type"], a["entity_id"]) for a in again] == [("payment_returned", created["id"])]


async def member_alerts(http, headers) -> list[dict]:
    response = await http.get("/api/v1/alerts", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_the_webhook_answers_while_temporal_is_down_and_the_sweep_delivers_the_event_later(
    outbox, http, su, sandbox_url, odfi, db, settings, temporal_env
):
    """The bank's settlement reaches an API that cannot reach Temporal: recorded, answered 200, delivered later by
    the sweep; meanwhile the payment waits for it."""
    cut_off = settings.model_copy(update={"temporal_address": "127.0.0.1:1"})  # nothing listens there
    org = await funded_org(http, su, sandbox_url)
    async with ApiServer(cut_off) as lonely:
        await odfi.put("/odfi/_control", json={"webhook_url": f"{lonely.url}/api/v1/webhooks/bank"})
        try:
            created = await pay(outbox.http, org, "ach_debit", "70.00")
            waiting = await wait_status(
                http, org.headers["org_admin"], created["id"], statuses={"pending_settlement"}, timeout=30
            )

            async def sent() -> list[dict]:
                return (await odfi.get("/odfi/events", params={"trace_number": waiting["trace_number"]})).json()[
                    "events"
                ]

            await poll(
                sent,
                lambda events: [e["delivered"] for e in events] == [True],
                30,
                what=lambda events: f"the bank did not hear 2xx for its settlement: {events}",
            )
            [recorded] = await wait_events(http, su, created["id"], 1)
        finally:
            await odfi.put("/odfi/_control", json={"webhook_url": f"{_session_api(http)}/api/v1/webhooks/bank"})
    assert recorded["status"] == "pending" and recorded["type"] == "entry.settled"
    payment = (await http.get(f"/api/v1/payments/{created['id']}", headers=org.headers["org_admin"])).json()
    assert payment["status"] == "pending_settlement"

    from models.ach import BankEventSweepInput  # here: the old code had no outbox, and the other tests still run on it

    handed = await temporal_env.client.execute_workflow(
        "BankEventSweepWorkflow",
        BankEventSweepInput(interval_seconds=0),
        id=f"sweep-{uuid.uuid4()}",
        task_queue=outbox.settings.task_queue,
        result_type=int,
    )
    assert handed >= 1
    done = await wait_status(http, org.headers["org_admin"], created["id"], timeout=60)
    assert done["status"] == "completed"
    [delivered] = await events_of(http, su, created["id"])
    assert delivered["status"] == "delivered" and delivered["signaled_at"]
    assert await net_postings(db, created["id"]) == {"GL-CASH": Decimal("70.00"), "member": Decimal("-70.00")}


def _session_api(http: httpx.AsyncClient) -> str:
    return str(http.base_url).rstrip("/")


async def test_the_webhook_answers_503_only_when_our_own_database_is_down(settings):
    """The one condition worth the bank's retry: the event could not be recorded at all."""
    no_database = settings.model_copy(update={"database_url": "postgresql://postgres:x@127.0.0.1:1/postgres"})
    async with ApiServer(no_database) as api, httpx.AsyncClient(base_url=api.url, timeout=30) as client:
        response = await bank_sends(
            client,
            settings,
            {"type": "entry.settled", "trace_number": "091000019999999", "settlement_date": "2031-01-06"},
        )
    assert_error(response, 503, "database_unavailable")


async def test_an_event_for_no_payment_of_ours_is_listed_for_superusers_only(http, su, settings):
    trace = f"0910000199{uuid.uuid4().int % 100000:05d}"
    response = await bank_sends(
        http,
        settings,
        {"type": "entry.returned", "trace_number": trace, "return_code": "R03", "return_reason": "No account"},
    )
    assert response.status_code == 200 and response.json() == {"status": "accepted", "delivery": "exception"}
    listed = (await http.get("/api/v1/bank-events", headers=su, params={"trace_number": trace})).json()
    assert [(e["status"], e["payment_id"], e["detail"]) for e in listed["items"]] == [
        ("exception", None, "no payment has this trace number")
    ]
    org = await make_org(http, su, roles=("operator", "org_admin"))
    for role in ("operator", "org_admin"):
        mine = (await http.get("/api/v1/bank-events", headers=org.headers[role], params={"trace_number": trace})).json()
        assert mine["total"] == 0
