"""Identity through HTTP on the real stack: password rules, change, lockout and unlock, reset by email, logout.
Lockout settings are the short ones of tests/identity_stack.py (3 failures lock for 2 s, doubling)."""

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from core.security import create_token
from tests.conftest import assert_error, make_org, make_user
from tests.identity_stack import (
    PASSWORD,
    bearer,
    events,
    identity_api,
    login,
    refused_login,
    tokens,
)


@pytest.fixture(scope="module")
async def identity_http(settings, worker):
    async with identity_api(settings) as client:
        yield client


async def test_staff_cannot_create_a_user_with_a_weak_password(identity_http, su):
    org = await make_org(identity_http, su, roles=("org_admin",))
    for password, code in (("short-pw", "validation_error"), ("password1234", "password_too_weak")):
        response = await identity_http.post(
            "/api/v1/users",
            headers=org.headers["org_admin"],
            json={
                "email": f"weak-{uuid.uuid4().hex[:8]}@tests.example",
                "full_name": "Weak",
                "password": password,
                "role": "member",
            },
        )
        assert_error(response, 422, code)


async def test_password_change_rules_history_and_sessions(identity_http, su):
    user, _ = await make_user(identity_http, su, "member", (await make_org(identity_http, su, roles=())).id)
    email, http = user["email"], identity_http
    old = await tokens(http, email, PASSWORD)
    await asyncio.sleep(1.1)  # a JWT's iat is in seconds: the change must come in a later second to end `old`

    async def change(current: str, new: str, headers: dict):
        return await http.post(
            "/api/v1/auth/password", headers=headers, json={"current_password": current, "new_password": new}
        )

    assert_error(
        await change("not-my-password-at-all", "another-long-passphrase-1", bearer(old)), 422, "wrong_password"
    )
    assert_error(await change(PASSWORD, "password1234", bearer(old)), 422, "password_too_weak")
    assert_error(await change(PASSWORD, PASSWORD, bearer(old)), 422, "password_reused")
    response = await change(PASSWORD, "second-long-passphrase-2", bearer(old))
    assert response.status_code == 200, response.text
    current = response.json()
    # Every session before the change ended: the access token and the refresh token.
    assert_error(await http.get("/api/v1/me", headers=bearer(old)), 401)
    assert_error(await http.post("/api/v1/auth/refresh", json={"refresh_token": old["refresh_token"]}), 401)
    assert (await http.get("/api/v1/me", headers=bearer(current))).status_code == 200
    await refused_login(http, email, PASSWORD)

    # Five passwords in a row are remembered: none of the last 5 again, the 6th back is allowed.
    passwords = [PASSWORD, "second-long-passphrase-2"]
    for n in range(3, 7):
        new = f"passphrase-number-{n}-is-long"
        current = (await change(passwords[-1], new, bearer(current))).json()
        passwords.append(new)
    # The 5th back (the oldest remembered) is refused; the 6th back is allowed.
    assert_error(await change(passwords[-1], passwords[-5], bearer(current)), 422, "password_reused")
    response = await change(passwords[-1], passwords[0], bearer(current))
    assert response.status_code == 200, response.text


async def test_lockout_same_answer_and_unlock_by_an_admin(identity_http, su, db):
    org = await make_org(identity_http, su, roles=("org_admin", "operator"))
    user, _ = await make_user(identity_http, su, "member", org.id)
    email, http = user["email"], identity_http

    unknown = await refused_login(http, f"nobody-{uuid.uuid4().hex[:6]}@tests.example", PASSWORD)
    for _ in range(3):
        wrong = await refused_login(http, email, "a-wrong-password-here")
    locked = await refused_login(http, email, PASSWORD)  # the right password, but locked
    # One answer for an unknown email, a wrong password and a locked account.
    assert unknown == wrong == locked

    # An operator may not unlock (a 403); the org admin may.
    unlock = f"/api/v1/users/{user['id']}/unlock"
    assert_error(await http.post(unlock, headers=org.headers["operator"]), 403)
    assert (await http.post(unlock, headers=org.headers["org_admin"])).status_code == 204

    # Locked again with no good login in between (an unlock keeps the count): twice as long, 60 s.
    started = datetime.now(UTC)
    for _ in range(3):
        await refused_login(http, email, "a-wrong-password-here")
    count, until = await lock(db, user["id"])
    assert count == 2 and until >= started + timedelta(seconds=60)
    assert (await http.post(unlock, headers=org.headers["org_admin"])).status_code == 204
    await tokens(http, email, PASSWORD)
    assert await events(db, user["id"]) == [
        *["login_failed"] * 3,
        "account_locked",
        "login_refused_locked",
        "account_unlocked",
        *["login_failed"] * 3,
        "account_locked",
        "account_unlocked",
    ]


async def test_a_lock_ends_by_itself(settings, worker, su, db):
    async with identity_api(settings, lockout_duration=timedelta(seconds=1)) as http:
        user, _ = await make_user(http, su, "member", (await make_org(http, su, roles=())).id)
        for _ in range(3):
            await refused_login(http, user["email"], "a-wrong-password-here")
        _, until = await lock(db, user["id"])
        await asyncio.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.2)
        await tokens(http, user["email"], PASSWORD)
        assert (await events(db, user["id"]))[-1] == "account_locked"  # it ended by time: no unlock


async def lock(db, user_id: str) -> tuple[int, datetime]:
    async with db.session() as session:
        row = (
            await session.execute(
                text("SELECT lock_count, locked_until FROM login_lockouts WHERE user_id = :u"), {"u": user_id}
            )
        ).one()
    return row.lock_count, row.locked_until


async def test_password_reset_by_email_once(identity_http, su, mailbox, db, settings):
    org = await make_org(identity_http, su, roles=())
    user, _ = await make_user(identity_http, su, "member", org.id)
    email, http = user["email"], identity_http
    before = await tokens(http, email, PASSWORD)

    unknown = await http.post("/api/v1/auth/password-reset", json={"email": f"nobody-{uuid.uuid4().hex[:6]}@x.example"})
    known = await http.post("/api/v1/auth/password-reset", json={"email": email})
    assert unknown.status_code == known.status_code == 202 and unknown.content == known.content == b""
    message = await mailbox.wait_for(lambda m: email in m["To"], timeout=30)
    body = message.get_body(("plain",)).get_content()
    link = re.search(r"reset-password\?token=([A-Za-z0-9_.-]+)", body)
    assert link is not None, body
    token = link.group(1)
    assert body.count(token) == 2  # in the link, and alone for an API client

    async def confirm(password: str, token: str = token):
        return await http.post("/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": password})

    # A weak password is refused and leaves the token good; a good one is set once.
    assert_error(await confirm("password1234"), 422, "password_too_weak")
    assert (await confirm("a-brand-new-passphrase-9")).status_code == 204
    assert_error(await confirm("yet-another-passphrase-7"), 400, "invalid_reset_token")
    await refused_login(http, email, PASSWORD)
    await tokens(http, email, "a-brand-new-passphrase-9")
    # Every session before the reset ended.
    assert_error(await http.post("/api/v1/auth/refresh", json={"refresh_token": before["refresh_token"]}), 401)

    # Forged and expired tokens are refused the same way.
    expired, _, _ = create_token(
        settings, subject=user["id"], token_type="reset", now=datetime.now(UTC) - timedelta(hours=2)
    )
    assert_error(await confirm("yet-another-passphrase-7", token=expired), 400, "invalid_reset_token")
    assert_error(await confirm("yet-another-passphrase-7", token=token[:-4] + "AAAA"), 400, "invalid_reset_token")
    async with db.session() as session:
        stored = (
            (
                await session.execute(
                    text("SELECT token_hash FROM password_resets WHERE user_id = :u"), {"u": user["id"]}
                )
            )
            .scalars()
            .all()
        )
    assert len(stored) == 1 and token not in stored  # only its hash


async def test_logout_revokes_the_refresh_family(identity_http, su):
    user, _ = await make_user(identity_http, su, "member", (await make_org(identity_http, su, roles=())).id)
    http = identity_http
    first = await tokens(http, user["email"], PASSWORD)
    other_session = await tokens(http, user["email"], PASSWORD)
    rotated = (await http.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()
    newest = (await http.post("/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})).json()
    # Logging out with any token of the family (here the first, already used) ends the whole family...
    assert (await http.post("/api/v1/auth/logout", json={"refresh_token": first["refresh_token"]})).status_code == 204
    assert_error(await http.post("/api/v1/auth/refresh", json={"refresh_token": newest["refresh_token"]}), 401)
    # ...and only that family: the other login's session goes on.
    response = await http.post("/api/v1/auth/refresh", json={"refresh_token": other_session["refresh_token"]})
    assert response.status_code == 200, response.text
    assert_error(await http.post("/api/v1/auth/logout", json={"refresh_token": "not-a-token"}), 401)
    assert (await login(http, user["email"], PASSWORD)).status_code == 200
