"""Webhooks out on the real stack: book transfers change payment statuses, the outbox rows written with them are sent
by the delivery workflows to the sandbox receiver over HTTP, signed with the subscription's secret. The test stack
retries a delivery for 5 s (tests/conftest.py) before it is a dead letter."""

import json
import time
import uuid
from collections import defaultdict
from itertools import pairwise

import httpx
import pytest

from activities.webhooks import start_dispatcher
from core import webhook_signing
from tests.conftest import Org, assert_error, make_org, open_account
from tests.integration.test_kyc import submit
from tests.integration.test_loans import apply
from tests.integration.test_members import new_member
from tests.polling import poll

V1 = "/api/v1"
STATUSES = ["created", "validated", "completed"]  # a book transfer's, in order


@pytest.fixture(scope="module")
async def dispatcher(temporal_env, settings, api_server):
    await start_dispatcher(temporal_env.client, settings)  # as worker.py does at start


@pytest.fixture
async def receiver(sandbox_url):
    """A fresh endpoint of the sandbox receiver: (its URL, a client of the sandbox, its name)."""
    name = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as sandbox:
        yield f"{sandbox_url}/receiver/{name}", sandbox, name


async def funded_org(http, su) -> Org:
    org = await make_org(http, su)
    member = org.users["member"]["id"]
    org.account = await open_account(http, su, org.id, member, deposit="1000.00")
    org.users["savings"] = await open_account(http, su, org.id, member, type_="savings")
    return org


async def subscribe(http, org: Org, url: str) -> dict:
    response = await http.post(
        f"{V1}/webhook-subscriptions",
        headers={**org.headers["org_admin"], "Idempotency-Key": uuid.uuid4().hex},
        json={"url": url, "event_types": ["payment.status_changed"], "description": "ERP"},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def transfer(http, org: Org, amount: str) -> str:
    response = await http.post(
        f"{V1}/transfers/book",
        headers={**org.headers["member"], "Idempotency-Key": uuid.uuid4().hex},
        json={"from_account_id": org.account["id"], "to_account_id": org.users["savings"]["id"], "amount": amount},
    )
    assert response.status_code in (200, 201, 202), response.text
    return response.json()["id"]


async def control(sandbox, name: str, down: bool) -> None:
    assert (await sandbox.put(f"/receiver/{name}/_control", json={"down": down})).status_code == 200


async def received(sandbox, name: str) -> list[dict]:
    return (await sandbox.get(f"/receiver/{name}/received")).json()["items"]


def accepted(items: list[dict]) -> list[dict]:
    return [i for i in items if i["accepted"]]


async def deliveries(http, headers: dict, subscription_id: str, **params) -> dict:
    response = await http.get(
        f"{V1}/webhook-subscriptions/{subscription_id}/deliveries", headers=headers, params={"limit": 100, **params}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_an_endpoint_down_for_a_while_gets_every_event_once_in_order_signed(http, su, dispatcher, receiver):
    url, sandbox, name = receiver
    org = await funded_org(http, su)
    subscription = await subscribe(http, org, url)
    secret = subscription.pop("secret")
    assert secret.startswith(subscription["secret_hint"])
    shown = await http.get(f"{V1}/webhook-subscriptions/{subscription['id']}", headers=org.headers["org_admin"])
    assert shown.json() == subscription and secret not in shown.text  # the secret is shown once
    listed = await http.get(
        f"{V1}/webhook-subscriptions", headers=org.headers["org_admin"], params={"event_type": "payment.status_changed"}
    )
    assert [s["id"] for s in listed.json()["items"]] == [subscription["id"]] and secret not in listed.text

    await control(sandbox, name, down=True)
    payments = [await transfer(http, org, "10.00"), await transfer(http, org, "20.00")]
    # Down for a while: the first event was refused twice (retried with backoff) before it comes back.
    await poll(lambda: received(sandbox, name), lambda items: len(items) >= 2, 20, "no retries while down")
    await control(sandbox, name, down=False)

    items = await poll(
        lambda: received(sandbox, name), lambda items: len(accepted(items)) >= 6, 30, "not every event arrived"
    )
    got = accepted(items)
    assert len(got) == 6  # once each: 3 statuses of 2 payments
    assert len({g["headers"]["x-webhook-id"] for g in got}) == 6
    per_payment: dict[str, list[str]] = defaultdict(list)
    for g in got:
        headers, body = g["headers"], g["body"].encode()
        assert webhook_signing.verify(
            secret, headers["x-webhook-timestamp"], headers["x-webhook-signature"], body, time.time(), 300
        )
        assert not webhook_signing.verify(
            "whsec_not-it", headers["x-webhook-timestamp"], headers["x-webhook-signature"], body, time.time(), 300
        )
        event = json.loads(body)
        assert event["id"] == headers["x-webhook-id"] and event["type"] == headers["x-webhook-event"]
        per_payment[event["data"]["payment_id"]].append(event["data"]["status"])
    assert per_payment == dict.fromkeys(payments, STATUSES)  # in order per entity

    log = await deliveries(http, org.headers["org_admin"], subscription["id"])
    assert log["total"] == 6 and {d["status"] for d in log["items"]} == {"delivered"}
    first = log["items"][-1]  # newest first: the oldest is the one retried while the endpoint was down
    assert first["attempts"] >= 3 and first["last_status_code"] == 200
    assert first["payload"]["data"] == {
        "payment_id": payments[0],
        "kind": "book",
        "amount": "10.00",
        "currency": "USD",
        "status": "created",
        "detail": None,
    }
    # A later status carries what changed with it (the entry the transfer posted).
    completed = next(d for d in log["items"] if d["payload"]["data"]["status"] == "completed")
    data = completed["payload"]["data"]
    entry = (await http.get(f"{V1}/payments/{data['payment_id']}", headers=org.headers["member"])).json()
    assert data["detail"] == {"journal_entry_id": entry["journal_entry_id"]} and data["amount"] in ("10.00", "20.00")


async def test_a_dead_letter_is_counted_and_replayed_once_and_other_orgs_see_nothing(http, su, dispatcher, receiver):
    url, sandbox, name = receiver
    org, other = await funded_org(http, su), await make_org(http, su)
    subscription = await subscribe(http, org, url)
    await control(sandbox, name, down=True)
    payment = await transfer(http, org, "5.00")

    admin = org.headers["org_admin"]
    dead = await poll(
        lambda: deliveries(http, admin, subscription["id"], status="dead"),
        lambda page: page["total"] >= 1,
        20,
        "the event never became a dead letter",
    )
    await control(sandbox, name, down=False)  # the later events of the payment go through, in order behind it
    await poll(
        lambda: deliveries(http, admin, subscription["id"], status="delivered"),
        lambda page: page["total"] == 2,
        20,
        "the events after the dead letter were not delivered",
    )
    letter = dead["items"][0]
    assert letter["payload"]["data"]["status"] == "created" and letter["entity_id"] == payment
    assert letter["last_error"] and letter["attempts"] >= 3

    # The operator sees it, among the operations' dead letters too.
    operator = org.headers["operator"]
    summary = (await http.get(f"{V1}/operations/dead-letters", headers=operator)).json()["items"]
    assert {d["kind"]: d["count"] for d in summary}["dead_webhook_deliveries"] == 1
    listed = (await http.get(f"{V1}/webhook-deliveries", headers=operator, params={"status": "dead"})).json()
    assert [d["id"] for d in listed["items"]] == [letter["id"]]

    # Another organization sees neither the subscription nor its deliveries, and cannot replay them.
    b_admin = other.headers["org_admin"]
    assert_error(await http.get(f"{V1}/webhook-subscriptions/{subscription['id']}", headers=b_admin), 404)
    assert_error(await http.get(f"{V1}/webhook-subscriptions/{subscription['id']}/deliveries", headers=b_admin), 404)
    theirs = await http.get(f"{V1}/webhook-deliveries", headers=b_admin, params={"subscription_id": subscription["id"]})
    assert theirs.json()["total"] == 0
    assert_error(await http.post(f"{V1}/webhook-deliveries/{letter['id']}/replay", headers=b_admin), 404)
    assert_error(
        await http.post(f"{V1}/webhook-deliveries/{letter['id']}/replay", headers=other.headers["operator"]), 404
    )

    replayed = await http.post(f"{V1}/webhook-deliveries/{letter['id']}/replay", headers=operator)
    assert replayed.status_code == 200 and replayed.json()["status"] == "pending", replayed.text
    again = await http.post(f"{V1}/webhook-deliveries/{letter['id']}/replay", headers=operator)
    assert_error(again, 409, "not_dead_letter")  # pending or delivered by now: never replayed twice
    await poll(
        lambda: deliveries(http, admin, subscription["id"], status="delivered"),
        lambda page: page["total"] == 3,
        20,
        "the replayed dead letter was not delivered",
    )
    got = accepted(await received(sandbox, name))
    assert [g["headers"]["x-webhook-id"] for g in got].count(letter["id"]) == 1  # once
    assert len(got) == 3
    summary = (await http.get(f"{V1}/operations/dead-letters", headers=operator)).json()["items"]
    assert {d["kind"]: d["count"] for d in summary}["dead_webhook_deliveries"] == 0


async def test_a_loans_status_changes_reach_its_organizations_subscriber(
    http, su, sandbox_url, bank, product, dispatcher, receiver
):
    url, sandbox, name = receiver
    response = await http.post(
        f"{V1}/webhook-subscriptions",
        headers={**bank.headers["org_admin"], "Idempotency-Key": uuid.uuid4().hex},
        json={"url": url, "event_types": ["loan.status_changed"]},
    )
    assert response.status_code == 201, response.text
    loan = await apply(http, sandbox_url, bank, product)

    def statuses(items: list[dict]) -> list[str]:
        return [json.loads(i["body"])["data"]["status"] for i in accepted(items)]

    items = await poll(
        lambda: received(sandbox, name),
        lambda items: "pending_approval" in statuses(items),
        30,
        lambda items: f"the loan's statuses did not arrive: {statuses(items)}",
    )
    assert statuses(items) == ["checking_eligibility", "credit_check", "pending_approval"]
    first = json.loads(accepted(items)[0]["body"])
    assert first["type"] == "loan.status_changed"
    assert first["data"] == {**first["data"], "loan_id": loan["id"], "previous_status": "submitted"}


async def test_a_kyc_outcome_reaches_the_members_organizations_subscriber(http, su, dispatcher, receiver):
    url, sandbox, name = receiver
    org = await make_org(http, su, roles=("org_admin",))
    response = await http.post(
        f"{V1}/webhook-subscriptions",
        headers={**org.headers["org_admin"], "Idempotency-Key": uuid.uuid4().hex},
        json={"url": url, "event_types": ["kyc.status_changed"]},
    )
    assert response.status_code == 201, response.text
    member, headers = await new_member(http, org)
    await submit(http, headers, member["id"])

    def events(items: list[dict]) -> list[dict]:
        return [json.loads(i["body"])["data"] for i in accepted(items)]

    items = await poll(
        lambda: received(sandbox, name),
        lambda items: "verified" in [e["status"] for e in events(items)],
        30,
        lambda items: f"the KYC outcome did not arrive: {events(items)}",
    )
    changes = events(items)
    assert {e["member_id"] for e in changes} == {member["id"]}
    assert changes[0]["previous_status"] == "unverified" and changes[-1]["status"] == "verified"
    assert all(a["status"] == b["previous_status"] for a, b in pairwise(changes))
