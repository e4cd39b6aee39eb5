"""API keys through HTTP on the real stack: a key acts as its creator within its scopes (403 beyond them), never
across organizations (404), never after its expiry or revocation (401); rotation keeps the old key for the overlap
only; the last-used time is written, at most once a minute."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tests.conftest import Org, assert_error, make_org, open_account

V1 = "/api/v1"


async def create_key(http, headers: dict, scopes: list[str], **extra) -> dict:
    response = await http.post(
        f"{V1}/api-keys",
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        json={"name": f"key {uuid.uuid4().hex[:6]}", "scopes": scopes, **extra},
    )
    assert response.status_code == 201, response.text
    return response.json()


def with_key(key: dict) -> dict:
    return {"X-API-Key": key["key"]}


async def org_with_account(http, su) -> tuple[Org, dict]:
    org = await make_org(http, su, roles=("org_admin", "member"))
    return org, await open_account(http, su, org.id, org.users["member"]["id"])


async def test_a_key_acts_as_its_creator_within_its_scopes(http, su):
    org, account = await org_with_account(http, su)
    admin = org.headers["org_admin"]
    key = await create_key(http, admin, ["accounts:read", "payments:read"])
    assert key["key"].startswith(f"bo_{key['prefix']}_") and key["status"] == "active"
    assert key["created_by"] == org.users["org_admin"]["id"] and key["org_id"] == org.id
    assert "secret_hash" not in key

    for headers in (with_key(key), {"Authorization": f"Bearer {key['key']}"}):
        response = await http.get(f"{V1}/accounts/{account['id']}", headers=headers)
        assert response.status_code == 200, response.text
    me = (await http.get(f"{V1}/me", headers=with_key(key))).json()
    assert me["id"] == org.users["org_admin"]["id"]

    # Beyond its scopes: a 403, though its creator may do it.
    assert (await http.get(f"{V1}/bills", headers=admin)).status_code == 200
    assert_error(await http.get(f"{V1}/bills", headers=with_key(key)), 403, "insufficient_scope")
    # A key never makes, sees or rotates keys.
    refused = await http.post(
        f"{V1}/api-keys",
        headers={**with_key(key), "Idempotency-Key": uuid.uuid4().hex},
        json={"name": "child", "scopes": ["payments:read"]},
    )
    assert_error(refused, 403)
    assert_error(await http.get(f"{V1}/api-keys/{key['id']}", headers=with_key(key)), 403)

    # Shown once: reads never carry the secret.
    shown = (await http.get(f"{V1}/api-keys/{key['id']}", headers=admin)).json()
    assert "key" not in shown and shown["prefix"] == key["prefix"]
    listed = (await http.get(f"{V1}/api-keys", headers=admin, params={"status": "active"})).json()
    assert [k["id"] for k in listed["items"]] == [key["id"]]
    assert key["key"] not in str(listed)


async def test_a_key_is_bounded_by_its_creators_current_role(http, su):
    org = await make_org(http, su, roles=("org_admin",))
    key = await create_key(http, org.headers["org_admin"], ["users:read"])
    assert (await http.get(f"{V1}/users", headers=with_key(key))).status_code == 200
    response = await http.patch(
        f"{V1}/users/{org.users['org_admin']['id']}", headers=su, json={"role": "operator"}
    )  # the creator is an operator now: reading users is an org admin's
    assert response.status_code == 200, response.text
    assert_error(await http.get(f"{V1}/users", headers=with_key(key)), 403)
    await http.patch(f"{V1}/users/{org.users['org_admin']['id']}", headers=su, json={"is_active": False})
    assert_error(await http.get(f"{V1}/me", headers=with_key(key)), 401)


async def test_scopes_beyond_the_role_and_unknown_scopes_are_refused(http, su):
    org = await make_org(http, su, roles=("org_admin", "member"))
    admin = org.headers["org_admin"]
    refused = await http.post(
        f"{V1}/api-keys",
        headers={**admin, "Idempotency-Key": uuid.uuid4().hex},
        json={"name": "too much", "scopes": ["payments:read", "audit:read"]},
    )
    assert "audit:read" in assert_error(refused, 403, "scope_not_allowed")["message"]
    unknown = await http.post(
        f"{V1}/api-keys",
        headers={**admin, "Idempotency-Key": uuid.uuid4().hex},
        json={"name": "odd", "scopes": ["vaults:read"]},
    )
    assert_error(unknown, 422, "validation_error")
    member = await http.post(
        f"{V1}/api-keys",
        headers={**org.headers["member"], "Idempotency-Key": uuid.uuid4().hex},
        json={"name": "mine", "scopes": ["payments:read"]},
    )
    assert_error(member, 403)
    listed = (await http.get(f"{V1}/api-keys", headers=admin)).json()
    assert listed["total"] == 0  # nothing was written


async def test_a_retry_with_the_same_idempotency_key_makes_no_second_key(http, su):
    org = await make_org(http, su, roles=("org_admin",))
    headers = {**org.headers["org_admin"], "Idempotency-Key": uuid.uuid4().hex}
    body = {"name": "retried", "scopes": ["payments:read"]}
    first = await http.post(f"{V1}/api-keys", headers=headers, json=body)
    assert first.status_code == 201, first.text
    again = assert_error(await http.post(f"{V1}/api-keys", headers=headers, json=body), 409, "already_created")
    assert again["details"]["id"] == first.json()["id"]
    assert (await http.get(f"{V1}/api-keys", headers=org.headers["org_admin"])).json()["total"] == 1


async def test_a_key_of_one_organization_never_sees_another(http, su):
    (a, _), (b, b_account) = await asyncio.gather(org_with_account(http, su), org_with_account(http, su))
    key = await create_key(http, a.headers["org_admin"], ["accounts:read"])
    assert_error(await http.get(f"{V1}/accounts/{b_account['id']}", headers=with_key(key)), 404, "not_found")
    listed = (await http.get(f"{V1}/accounts", headers=with_key(key), params={"org_id": b.id})).json()
    assert b_account["id"] not in str(listed)
    # Nor does the other organization's admin see, revoke or rotate A's key.
    b_admin = b.headers["org_admin"]
    assert_error(await http.get(f"{V1}/api-keys/{key['id']}", headers=b_admin), 404)
    assert_error(await http.post(f"{V1}/api-keys/{key['id']}/revoke", headers=b_admin), 404)
    assert_error(await http.post(f"{V1}/api-keys/{key['id']}/rotate", headers=b_admin, json={}), 404)
    assert key["id"] not in str((await http.get(f"{V1}/api-keys", headers=b_admin)).json())
    assert (await http.get(f"{V1}/me", headers=with_key(key))).status_code == 200  # still valid


async def test_expired_and_revoked_keys_are_refused(http, su, db):
    org = await make_org(http, su, roles=("org_admin",))
    admin = org.headers["org_admin"]
    expiring, revoked = (
        await create_key(http, admin, ["payments:read"]),
        await create_key(http, admin, ["payments:read"]),
    )
    for key in (expiring, revoked):
        assert (await http.get(f"{V1}/payments", headers=with_key(key))).status_code == 200

    async with db.session() as session, session.begin():
        await session.execute(
            text("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :id"), {"id": expiring["id"]}
        )
    assert "expired" in assert_error(await http.get(f"{V1}/payments", headers=with_key(expiring)), 401)["message"]
    assert (await http.get(f"{V1}/api-keys/{expiring['id']}", headers=admin)).json()["status"] == "expired"

    first = await http.post(f"{V1}/api-keys/{revoked['id']}/revoke", headers=admin)
    assert first.status_code == 200 and first.json()["status"] == "revoked"
    assert "revoked" in assert_error(await http.get(f"{V1}/payments", headers=with_key(revoked)), 401)["message"]
    again = await http.post(f"{V1}/api-keys/{revoked['id']}/revoke", headers=admin)  # a no-op
    assert again.status_code == 200 and again.json()["revoked_at"] == first.json()["revoked_at"]
    assert_error(await http.post(f"{V1}/api-keys/{revoked['id']}/rotate", headers=admin, json={}), 409, "not_active")
    # A wrong secret with a real prefix is as unknown as any made-up key.
    forged = f"bo_{revoked['prefix']}_{'A' * 43}"
    assert_error(await http.get(f"{V1}/payments", headers={"X-API-Key": forged}), 401)


async def test_rotation_keeps_the_old_key_for_the_overlap_only(http, su):
    org = await make_org(http, su, roles=("org_admin",))
    admin = org.headers["org_admin"]
    old = await create_key(http, admin, ["payments:read"], expires_in_days=30)
    response = await http.post(f"{V1}/api-keys/{old['id']}/rotate", headers=admin, json={"overlap_seconds": 2})
    assert response.status_code == 201, response.text
    new = response.json()
    assert new["rotated_from"] == old["id"] and new["scopes"] == old["scopes"] and new["key"] != old["key"]
    assert new["created_by"] == old["created_by"]
    lifetime = datetime.fromisoformat(new["expires_at"]) - datetime.fromisoformat(new["created_at"])
    assert abs(lifetime - timedelta(days=30)) < timedelta(seconds=5)
    for key in (old, new):  # the overlap: both work
        assert (await http.get(f"{V1}/payments", headers=with_key(key))).status_code == 200
    again = await http.post(f"{V1}/api-keys/{old['id']}/rotate", headers=admin, json={"overlap_seconds": 2})
    assert_error(again, 409, "already_rotated")

    old_expiry = datetime.fromisoformat(
        (await http.get(f"{V1}/api-keys/{old['id']}", headers=admin)).json()["expires_at"]
    )
    await asyncio.sleep(max(0.0, (old_expiry - datetime.now(UTC)).total_seconds()) + 0.5)
    assert_error(await http.get(f"{V1}/payments", headers=with_key(old)), 401)
    assert (await http.get(f"{V1}/payments", headers=with_key(new))).status_code == 200


async def test_the_last_used_time_is_written_at_most_once_a_minute(http, su, db):
    org = await make_org(http, su, roles=("org_admin",))
    admin = org.headers["org_admin"]
    key = await create_key(http, admin, ["payments:read"])
    assert key["last_used_at"] is None
    before = datetime.now(UTC)
    assert (await http.get(f"{V1}/payments", headers=with_key(key))).status_code == 200
    first = (await http.get(f"{V1}/api-keys/{key['id']}", headers=admin)).json()["last_used_at"]
    assert first is not None and datetime.fromisoformat(first) >= before - timedelta(seconds=1)
    assert (await http.get(f"{V1}/payments", headers=with_key(key))).status_code == 200
    assert (await http.get(f"{V1}/api-keys/{key['id']}", headers=admin)).json()["last_used_at"] == first
    async with db.session() as session, session.begin():  # a minute later, as far as the key knows
        await session.execute(
            text("UPDATE api_keys SET last_used_at = last_used_at - interval '2 minutes' WHERE id = :id"),
            {"id": key["id"]},
        )
    assert (await http.get(f"{V1}/payments", headers=with_key(key))).status_code == 200
    latest = (await http.get(f"{V1}/api-keys/{key['id']}", headers=admin)).json()["last_used_at"]
    assert datetime.fromisoformat(latest) > datetime.fromisoformat(first) - timedelta(seconds=1)


async def test_the_audit_names_the_key_an_action_was_taken_with(http, su):
    org = await make_org(http, su, roles=("org_admin",))
    key = await create_key(http, org.headers["org_admin"], ["users:write"])

    async def create_member(headers: dict) -> str:
        body = {
            "email": f"audited-{uuid.uuid4().hex[:8]}@tests.example",
            "full_name": "Audited member",
            "password": "a-long-test-password",
            "role": "member",
            "org_id": org.id,
        }
        response = await http.post(f"{V1}/users", headers=headers, json=body)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    async def audited(user_id: str) -> dict:
        rows = (await http.get(f"{V1}/audit", headers=su, params={"entity_id": user_id})).json()["items"]
        [created] = [row for row in rows if row["action"] == "user.created"]
        return created

    by_key, by_hand = await create_member(with_key(key)), await create_member(org.headers["org_admin"])
    through_key, through_token = await audited(by_key), await audited(by_hand)
    # Both are the org admin's; only the first went through the key.
    assert through_key["actor_id"] == through_token["actor_id"] == org.users["org_admin"]["id"]
    assert (through_key["api_key_id"], through_token["api_key_id"]) == (key["id"], None)
    listed = (await http.get(f"{V1}/audit", headers=su, params={"api_key_id": key["id"]})).json()["items"]
    assert [row["entity_id"] for row in listed] == [by_key]
