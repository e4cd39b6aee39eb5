"""Standing instructions (domain/standing.py): a Temporal Schedule each, every run paying once, pause, resume and
cancel, a run that fails every attempt notified to its owner, and ACH credits and debits to a linked account."""

import asyncio
import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment

from activities.notifications import NotificationActivities
from activities.standing import StandingActivities
from core.email import EmailSender
from models.standing import StandingRunStep
from tests.conftest import assert_error, make_org, open_account
from tests.integration.test_ach import wait_status
from tests.integration.test_ach_extras import FILED
from tests.polling import poll


def keyed(headers: dict) -> dict:
    return {**headers, "Idempotency-Key": uuid.uuid4().hex}


async def balance(http, su, account: dict) -> Decimal:
    return Decimal((await http.get(f"/api/v1/accounts/{account['id']}", headers=su)).json()["ledger_balance"])


async def instruction(http, headers, instruction_id: str) -> dict:
    response = await http.get(f"/api/v1/standing-instructions/{instruction_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_counted_instruction_pays_each_run_once_and_pause_resume_cancel_hold(
    http, su, db, settings, temporal_env
):
    org = await make_org(http, su)
    member = org.headers["member"]
    src = await open_account(http, su, org.id, org.users["member"]["id"], deposit="100.00")
    dst = await open_account(http, su, org.id, org.users["member"]["id"])
    body = {
        "from_account_id": src["id"],
        "to_account_id": dst["id"],
        "amount": "7.00",
        "memo": "Savings",
        "every": "PT1S",
    }

    assert_error(
        await http.post("/api/v1/standing-instructions", headers=keyed(member), json={**body, "every": None}), 422
    )
    too_short = {**body, "every": "PT0.5S"}
    assert_error(await http.post("/api/v1/standing-instructions", headers=keyed(member), json=too_short), 422)
    # Above the maker-checker threshold (100,000.00 in the tests' settings) each transfer needs a checker: no standing one.
    large = {**body, "amount": "100000.01"}
    refused_large = await http.post("/api/v1/standing-instructions", headers=keyed(member), json=large)
    assert_error(refused_large, 422, "above_maker_checker_threshold")
    # Another member's account is not theirs to move money from.
    stranger = await make_org(http, su, roles=("member",))
    refused = await http.post("/api/v1/standing-instructions", headers=keyed(stranger.headers["member"]), json=body)
    assert refused.status_code == 404, refused.text

    created = await http.post("/api/v1/standing-instructions", headers=keyed(member), json={**body, "count": 3})
    assert created.status_code == 201, created.text
    made = created.json()
    done = await poll(
        lambda: instruction(http, member, made["id"]),
        lambda i: len([r for r in i["runs"] if r["status"] == "completed"]) >= 3,
        60,
        "three runs never completed",
    )
    await asyncio.sleep(2.5)  # a fourth would have come by now
    done = await instruction(http, member, made["id"])
    assert [r["status"] for r in done["runs"]] == ["completed"] * 3 and done["remaining_runs"] == 0
    assert len({r["payment_id"] for r in done["runs"]}) == 3
    assert await balance(http, su, dst) == Decimal("21.00")

    # A run started again for the same scheduled time (a catch-up, a retried activity after a crash) pays nothing new.
    first = done["runs"][-1]
    step = StandingRunStep(
        instruction_id=made["id"], scheduled_for=datetime.fromisoformat(first["scheduled_for"]), attempt=1
    )
    activities = StandingActivities(
        db, settings, temporal_env.client, NotificationActivities(db, EmailSender(settings))
    )
    again = await ActivityEnvironment().run(activities.pay_run, step)
    assert str(again.payment_id) == first["payment_id"]
    async with db.session() as session:
        await session.execute(
            text("DELETE FROM standing_instruction_runs WHERE instruction_id = :id AND scheduled_for = :at"),
            {"id": made["id"], "at": step.scheduled_for},
        )
        await session.commit()
    replayed = await ActivityEnvironment().run(activities.pay_run, step)  # the run row lost: the payment key holds
    assert str(replayed.payment_id) == first["payment_id"]
    assert await balance(http, su, dst) == Decimal("21.00")

    # Pause, resume and cancel an unbounded one.
    endless = (await http.post("/api/v1/standing-instructions", headers=keyed(member), json=body)).json()
    await poll(lambda: instruction(http, member, endless["id"]), lambda i: i["runs"], 30, "no first run")
    paused = await http.post(f"/api/v1/standing-instructions/{endless['id']}/pause", headers=member)
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    # A run started just before the pause may still pay (it read the row first) or be skipped: let it end.
    schedule = temporal_env.client.get_schedule_handle(endless["schedule_id"])
    await poll(schedule.describe, lambda d: not d.info.running_actions, 30, "a run never ended")
    runs_paused = len((await instruction(http, member, endless["id"]))["runs"])
    await asyncio.sleep(2.5)  # two runs' worth of time
    assert len((await instruction(http, member, endless["id"]))["runs"]) == runs_paused
    resumed = await http.post(f"/api/v1/standing-instructions/{endless['id']}/resume", headers=member)
    assert resumed.json()["status"] == "active"
    await poll(
        lambda: instruction(http, member, endless["id"]),
        lambda i: len(i["runs"]) > runs_paused,
        30,
        "no run after resuming",
    )
    canceled = await http.delete(f"/api/v1/standing-instructions/{endless['id']}", headers=member)
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    try:
        await temporal_env.client.get_schedule_handle(endless["schedule_id"]).describe()
        raise AssertionError("the canceled instruction's schedule is still there")
    except RPCError:
        pass
    assert_error(await http.delete(f"/api/v1/standing-instructions/{endless['id']}", headers=member), 409, "canceled")
    seen = (await http.get("/api/v1/standing-instructions", headers=org.headers["org_admin"])).json()
    assert {made["id"], endless["id"]} <= {i["id"] for i in seen["items"]}
    theirs = (await http.get("/api/v1/standing-instructions", headers=stranger.headers["member"])).json()
    assert theirs["items"] == []


async def test_a_run_short_of_funds_is_retried_then_its_owner_is_told(http, su, mailbox):
    org = await make_org(http, su)
    member = org.headers["member"]
    src = await open_account(http, su, org.id, org.users["member"]["id"], deposit="5.00")
    dst = await open_account(http, su, org.id, org.users["member"]["id"])
    body = {
        "from_account_id": src["id"],
        "to_account_id": dst["id"],
        "amount": "50.00",
        "every": "PT2S",
        "count": 1,
    }
    made = (await http.post("/api/v1/standing-instructions", headers=keyed(member), json=body)).json()
    done = await poll(
        lambda: instruction(http, member, made["id"]),
        lambda i: len(i["runs"]) >= 2,
        30,
        "the run's two attempts never happened",
    )
    assert [(r["attempt"], r["status"], r["failure_code"]) for r in done["runs"]] == [
        (2, "failed", "insufficient_funds"),
        (1, "failed", "insufficient_funds"),
    ]
    notified = await poll(
        lambda: http.get("/api/v1/notifications", headers=member),
        lambda r: any(n["kind"] == "standing_instruction_failed" for n in r.json()["items"]),
        30,
        "the owner was never told",
    )
    assert [n["kind"] for n in notified.json()["items"]].count("standing_instruction_failed") == 1
    assert await balance(http, su, dst) == Decimal("0.00")
    email = org.users["member"]["email"]
    mail = await mailbox.wait_for(lambda m: email in str(m["To"]) and "did not go through" in str(m["Subject"]))
    assert "the available balance does not cover the amount" in mail.get_body(("plain",)).get_content()


async def test_ach_instructions_credit_and_debit_the_external_account_once_per_run(
    http, su, ach_org, db, settings, temporal_env
):
    admin = ach_org.headers["org_admin"]
    account, external = ach_org.account, ach_org.external
    credit = {
        "kind": "ach_credit",
        "from_account_id": account["id"],
        "external_account_id": external["id"],
        "amount": "15.00",
        "memo": "Monthly sweep out",
        "every": "PT1S",
        "count": 2,
    }
    # The shape follows the kind; a member may not make ACH payments; another org's external account is not there.
    assert_error(
        await http.post(
            "/api/v1/standing-instructions", headers=keyed(admin), json={**credit, "to_account_id": account["id"]}
        ),
        422,
    )
    assert_error(
        await http.post("/api/v1/standing-instructions", headers=keyed(admin), json={**credit, "kind": "book"}), 422
    )
    assert_error(
        await http.post("/api/v1/standing-instructions", headers=keyed(ach_org.headers["member"]), json=credit), 403
    )
    stranger = await make_org(http, su)
    foreign = await http.post(
        "/api/v1/standing-instructions",
        headers=keyed(stranger.headers["org_admin"]),
        json={**credit, "from_account_id": (await open_account(http, su, stranger.id))["id"]},
    )
    assert foreign.status_code == 404, foreign.text
    # A credit's funds are the run's concern, not the set-up's: more than the balance is accepted here.
    big = await http.post("/api/v1/standing-instructions", headers=keyed(admin), json={**credit, "amount": "20000.00"})
    assert big.status_code == 201, big.text
    await http.delete(f"/api/v1/standing-instructions/{big.json()['id']}", headers=admin)

    debit = {
        "kind": "ach_debit",
        "to_account_id": account["id"],
        "external_account_id": external["id"],
        "amount": "9.00",
        "every": "PT1S",
        "count": 1,
    }
    made = []
    for body in (credit, debit):
        created = await http.post("/api/v1/standing-instructions", headers=keyed(admin), json=body)
        assert created.status_code == 201, created.text
        made.append(created.json())
    assert [(m["kind"], m["from_account_id"], m["to_account_id"]) for m in made] == [
        ("ach_credit", account["id"], None),
        ("ach_debit", None, account["id"]),
    ]
    runs = [
        await poll(
            lambda m=m, n=n: instruction(http, admin, m["id"]),
            lambda i, n=n: len([r for r in i["runs"] if r["status"] == "initiated"]) >= n,
            60,
            "the ACH runs never started their payments",
        )
        for m, n in zip(made, (2, 1), strict=True)
    ]
    await asyncio.sleep(2.5)  # a third credit would have come by now
    runs = [(await instruction(http, admin, m["id"]))["runs"] for m in made]
    assert [len(r) for r in runs] == [2, 1] and all(r["status"] == "initiated" for rs in runs for r in rs)

    # Each run's payment: an ACH payment of the instruction's kind, under the run's key, filed with the bank.
    for m, rs in zip(made, runs, strict=True):
        for run in rs:
            payment = await wait_status(http, admin, run["payment_id"], statuses=FILED)
            assert (payment["kind"], payment["amount"], payment["external_account_id"]) == (
                m["kind"],
                m["amount"],
                external["id"],
            )
    async with db.session() as session:
        keys = (
            (
                await session.execute(
                    text("SELECT idempotency_key FROM payments WHERE idempotency_key LIKE :p ORDER BY 1"),
                    {"p": f"standing:{made[0]['id']}:%"},
                )
            )
            .scalars()
            .all()
        )
    assert sorted(keys) == sorted(
        f"standing:{made[0]['id']}:{datetime.fromisoformat(r['scheduled_for']).isoformat()}:1" for r in runs[0]
    )

    # The run's activity again (a retry after a worker died, its run row lost): the same payment, nothing new.
    first = runs[0][-1]
    step = StandingRunStep(
        instruction_id=made[0]["id"], scheduled_for=datetime.fromisoformat(first["scheduled_for"]), attempt=1
    )
    async with db.session() as session:
        await session.execute(
            text("DELETE FROM standing_instruction_runs WHERE instruction_id = :id AND scheduled_for = :at"),
            {"id": made[0]["id"], "at": step.scheduled_for},
        )
        await session.commit()
    activities = StandingActivities(
        db, settings, temporal_env.client, NotificationActivities(db, EmailSender(settings))
    )
    again = await ActivityEnvironment().run(activities.pay_run, step)
    assert (again.status, str(again.payment_id)) == ("initiated", first["payment_id"])
    listed = (
        await http.get("/api/v1/payments", headers=admin, params={"account_id": external["id"], "limit": 100})
    ).json()
    ours = [p for p in listed["items"] if p["id"] in {r["payment_id"] for rs in runs for r in rs}]
    assert len(ours) == 3
