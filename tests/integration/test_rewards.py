"""Rewards: an org admin's program and earn rules; a member enrolls, earns by rule once per transaction (earning
again adds nothing), redeems within the balance (beyond it a 409, nothing written), every change an entry with its
reason; another member sees none of it (404)."""

import uuid
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import text

from domain import rewards
from tests.conftest import assert_error, make_org, make_user
from tests.planted import planted_import

V1 = "/api/v1"


@pytest.fixture(scope="module")
async def org(http, su):
    return await make_org(http, su, roles=("org_admin", "operator", "member"))


async def plant(db, org_id, user_id, rows) -> None:
    async with db.session() as session, session.begin():
        planted = await planted_import(session, org_id, user_id)
        for amount, category in rows:
            await session.execute(
                text(
                    "INSERT INTO imported_transactions (org_id, user_id, import_id, external_account_id, source, posted_on, amount, description, "
                    "category_key, dedup_key) VALUES (:org, :user, :import, :account, 'csv', :day, :amount, 'x', :category, :key)"
                ),
                {
                    **planted,
                    "org": org_id,
                    "user": user_id,
                    "day": date(2026, 6, 1),
                    "amount": Decimal(amount),
                    "category": category,
                    "key": uuid.uuid4().hex,
                },
            )


async def new_program(http, admin, **extra) -> dict:
    body = {
        "name": f"Cashback {uuid.uuid4().hex[:6]}",
        "rules": [
            {"category_key": "groceries", "points_per_unit": "2", "min_amount": "5.00"},
            {"category_key": "dining", "points_per_unit": "1.5"},
        ],
        **extra,
    }
    response = await http.post(f"{V1}/reward-programs", headers=admin, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_earning_by_rule_once_redeeming_within_the_balance_and_the_history(http, su, org, db):
    admin = org.headers["org_admin"]
    program = await new_program(http, admin)
    assert {r["category_key"] for r in program["rules"]} == {"groceries", "dining"}
    member, headers = await make_user(http, su, "member", org.id)
    other, other_headers = await make_user(http, su, "member", org.id)

    # staff do not write programs but the admin; a member does not enroll someone else's org's program
    assert_error(await http.post(f"{V1}/reward-programs", headers=headers, json={"name": "Mine"}), 403)
    assert_error(await http.post(f"{V1}/reward-programs", headers=org.headers["operator"], json={"name": "X"}), 403)

    enrolled = await http.post(f"{V1}/reward-programs/{program['id']}/enroll", headers=headers)
    assert enrolled.status_code == 201, enrolled.text
    account = enrolled.json()
    again = await http.post(f"{V1}/reward-programs/{program['id']}/enroll", headers=headers)
    assert again.status_code == 200 and again.json()["id"] == account["id"]
    url = f"{V1}/reward-accounts/{account['id']}"

    await plant(
        db,
        org.id,
        member["id"],
        [
            ("-10.00", "groceries"),  # 20 points
            ("-4.00", "groceries"),  # under the rule's minimum: none
            ("-20.00", "dining"),  # 30 points
            ("-50.00", "travel"),  # no rule: none
            ("25.00", "groceries"),  # income: none
        ],
    )
    await plant(db, org.id, other["id"], [("-100.00", "groceries")])  # another member's: never theirs

    earned = await http.post(f"{url}/earn", headers=headers)
    assert earned.status_code == 200, earned.text
    assert earned.json() == {"entries": 2, "points": "50.00", "balance": "50.00"}
    twice = await http.post(f"{url}/earn", headers=headers)
    assert twice.json()["entries"] == 0 and twice.json()["balance"] == "50.00"
    # the domain's entry point (the lead wires it to imports and postings) earns nothing more either
    async with db.session() as session, session.begin():
        out = await rewards.earn_for_member(session, uuid.UUID(member["id"]))
    assert out.entries == 0

    redeem = {**headers, "Idempotency-Key": uuid.uuid4().hex}
    too_much = await http.post(f"{url}/redemptions", headers=redeem, json={"points": "50.01", "reason": "Gift card"})
    assert_error(too_much, 409, "insufficient_points")
    done = await http.post(f"{url}/redemptions", headers=redeem, json={"points": "30.00", "reason": "Gift card"})
    assert done.status_code == 201, done.text
    replay = await http.post(f"{url}/redemptions", headers=redeem, json={"points": "30.00", "reason": "Gift card"})
    assert replay.status_code == 200 and replay.json()["id"] == done.json()["id"]
    assert (await http.get(url, headers=headers)).json()["balance"] == "20.00"
    assert_error(
        await http.post(
            f"{url}/redemptions",
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            json={"points": "20.01", "reason": "More"},
        ),
        409,
        "insufficient_points",
    )

    history = (await http.get(f"{url}/entries", headers=headers)).json()
    assert history["total"] == 3
    assert history["items"][0]["reason"] == "redeem"  # newest first
    assert sorted((e["reason"], e["points"]) for e in history["items"]) == [
        ("earn", "20.00"),
        ("earn", "30.00"),
        ("redeem", "-30.00"),
    ]
    assert all(e["txn_id"] for e in history["items"] if e["reason"] == "earn")
    assert history["items"][0]["note"] == "Gift card"
    async with db.session() as session:
        total = (
            await session.execute(
                text("SELECT sum(points) FROM reward_entries WHERE account_id = :a"), {"a": account["id"]}
            )
        ).scalar_one()
    assert total == Decimal("20.00")  # the balance is the sum of its entries

    # Another member: none of it exists for them; the org admin reads it; the operator may not earn for them.
    assert_error(await http.get(url, headers=other_headers), 404)
    assert_error(await http.get(f"{url}/entries", headers=other_headers), 404)
    assert_error(await http.post(f"{url}/earn", headers=other_headers), 404)
    stolen = {**other_headers, "Idempotency-Key": uuid.uuid4().hex}
    assert_error(await http.post(f"{url}/redemptions", headers=stolen, json={"points": "1", "reason": "x"}), 404)
    assert (await http.get(url, headers=admin)).status_code == 200
    assert_error(await http.post(f"{url}/earn", headers=org.headers["operator"]), 403)
    admin_redeem = {**admin, "Idempotency-Key": uuid.uuid4().hex}
    assert_error(await http.post(f"{url}/redemptions", headers=admin_redeem, json={"points": "1", "reason": "x"}), 403)


async def test_programs_are_edited_by_their_org_admin_only(http, su, org):
    admin = org.headers["org_admin"]
    program = await new_program(http, admin)
    url = f"{V1}/reward-programs/{program['id']}"
    changed = await http.patch(url, headers=admin, json={"rules": [{"category_key": "travel", "points_per_unit": "3"}]})
    assert changed.status_code == 200, changed.text
    assert [r["category_key"] for r in changed.json()["rules"]] == ["travel"]
    stranger_org = await make_org(http, su, roles=("org_admin", "member"))
    assert_error(await http.patch(url, headers=stranger_org.headers["org_admin"], json={"active": False}), 404)
    assert_error(await http.post(f"{url}/enroll", headers=stranger_org.headers["member"]), 404)
    assert_error(await http.patch(url, headers=org.headers["member"], json={"active": False}), 403)
    duplicate = {"rules": [{"category_key": "travel", "points_per_unit": "1"}] * 2}
    assert_error(await http.patch(url, headers=admin, json=duplicate), 422)
    off = await http.patch(url, headers=admin, json={"active": False})
    assert off.json()["active"] is False
    assert_error(await http.post(f"{url}/enroll", headers=org.headers["member"]), 409, "program_inactive")
