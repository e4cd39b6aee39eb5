from datetime import UTC, datetime, timedelta

import jwt

from core.security import create_token
from tests.conftest import SUPERUSER, assert_error, make_org


async def test_login_me_and_bad_password(http, su):
    me = await http.get("/api/v1/me", headers=su)
    assert me.status_code == 200 and me.json()["role"] == "superuser" and me.json()["email"] == SUPERUSER[0]
    assert_error(
        await http.post("/api/v1/auth/login", data={"username": SUPERUSER[0], "password": "wrong"}), 401, "unauthorized"
    )
    assert_error(await http.post("/api/v1/auth/login", data={"username": "nobody@x.example", "password": "x"}), 401)


async def test_refresh_rotates_and_a_reused_refresh_token_ends_the_session(http, su):
    tokens = (await http.post("/api/v1/auth/login", data={"username": SUPERUSER[0], "password": SUPERUSER[1]})).json()
    first = await http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert (
        await http.get("/api/v1/me", headers={"Authorization": f"Bearer {rotated['access_token']}"})
    ).status_code == 200
    # The old refresh token again: refused, and the rotated one is revoked with it.
    assert_error(await http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}), 401)
    assert_error(await http.post("/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}), 401)


async def test_expired_forged_and_misused_tokens_are_refused(http, su, settings):
    user_id = (await http.get("/api/v1/me", headers=su)).json()["id"]
    expired, _, _ = create_token(
        settings, subject=user_id, token_type="access", now=datetime.now(UTC) - timedelta(hours=2)
    )
    error = assert_error(await http.get("/api/v1/me", headers={"Authorization": f"Bearer {expired}"}), 401)
    assert "expired" in error["message"]

    now = datetime.now(UTC)
    forged = jwt.encode(
        {
            "sub": user_id,
            "type": "access",
            "jti": "x",
            "iat": now,
            "exp": now + timedelta(minutes=5),
            "role": "superuser",
        },
        "not-the-server-secret-but-long-enough-0123456789",
        algorithm="HS256",
    )
    assert_error(await http.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"}), 401)

    unsigned = jwt.encode(
        {"sub": user_id, "type": "access", "jti": "x", "iat": now, "exp": now + timedelta(minutes=5)},
        None,
        algorithm="none",
    )
    assert_error(await http.get("/api/v1/me", headers={"Authorization": f"Bearer {unsigned}"}), 401)

    refresh, _, _ = create_token(settings, subject=user_id, token_type="refresh")
    assert_error(await http.get("/api/v1/me", headers={"Authorization": f"Bearer {refresh}"}), 401)
    assert_error(await http.get("/api/v1/me"), 401)
    assert_error(await http.get("/api/v1/me", headers={"Authorization": "Bearer garbage"}), 401)


async def test_wrong_role_gets_403_and_writes_nothing(http, su):
    org = await make_org(http, su)
    for role in ("member", "operator", "org_admin"):
        response = await http.post(
            "/api/v1/accounts", headers=org.headers[role], json={"name": "x", "type": "checking", "org_id": org.id}
        )
        assert_error(response, 403, "forbidden")
    listed = await http.get("/api/v1/accounts", headers=su, params={"org_id": org.id})
    assert listed.json()["total"] == 0
    assert_error(await http.get("/api/v1/audit", headers=org.headers["org_admin"]), 403)


async def test_disabled_user_cannot_log_in_or_use_tokens(http, su):
    org = await make_org(http, su, roles=("member",))
    member = org.users["member"]
    assert (await http.patch(f"/api/v1/users/{member['id']}", headers=su, json={"is_active": False})).status_code == 200
    assert_error(await http.get("/api/v1/me", headers=org.headers["member"]), 401)
    assert_error(
        await http.post("/api/v1/auth/login", data={"username": member["email"], "password": "a-long-test-password"}),
        401,
    )


async def test_validation_errors_have_the_structured_body(http, su):
    error = assert_error(
        await http.post("/api/v1/users", headers=su, json={"email": "not-an-email"}), 422, "validation_error"
    )
    assert any(d["loc"][-1] == "email" for d in error["details"])
    assert_error(await http.get("/api/v1/no-such-thing", headers=su), 404)


async def test_org_admin_manages_only_its_own_organization(http, su):
    a, b = await make_org(http, su), await make_org(http, su)
    admin = a.headers["org_admin"]
    created = await http.post(
        "/api/v1/users",
        headers=admin,
        json={
            "email": "teller-a@tests.example",
            "full_name": "Teller",
            "password": "a-long-test-password",
            "role": "operator",
        },
    )
    assert created.status_code == 201 and created.json()["org_id"] == a.id
    assert_error(
        await http.post(
            "/api/v1/users",
            headers=admin,
            json={
                "email": "x-b@tests.example",
                "full_name": "X",
                "password": "a-long-test-password",
                "role": "member",
                "org_id": b.id,
            },
        ),
        403,
    )
    assert_error(
        await http.post(
            "/api/v1/users",
            headers=admin,
            json={
                "email": "su2@tests.example",
                "full_name": "X",
                "password": "a-long-test-password",
                "role": "superuser",
            },
        ),
        403,
    )
    users = (await http.get("/api/v1/users", headers=admin)).json()
    assert users["total"] == 4 and {u["org_id"] for u in users["items"]} == {a.id}
    assert_error(await http.get(f"/api/v1/users/{b.users['member']['id']}", headers=admin), 404)
    orgs = (await http.get("/api/v1/organizations", headers=admin)).json()
    assert [o["id"] for o in orgs["items"]] == [a.id]
