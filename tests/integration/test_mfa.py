"""TOTP MFA through HTTP on the real stack: enrolment (secret once, QR PNG), login in two steps, a code never good
twice, recovery codes once, a wrong code counted toward the lockout, disabling, and the organization's requirement
for staff (a restricted enrolment token)."""

import base64
from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from tests.conftest import assert_error, make_org, make_user
from tests.identity_stack import PASSWORD, bearer, events, identity_api, login, refused_login, tokens


@pytest.fixture(scope="module")
async def identity_http(settings, worker):
    async with identity_api(settings) as client:
        yield client


def code(secret: str, steps_ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30 * steps_ahead))


async def enrol(http, headers: dict) -> tuple[str, list[str], str]:
    """(secret, recovery codes, the code that confirmed it) of a confirmed enrolment."""
    response = await http.post("/api/v1/auth/mfa/enroll", headers=headers)
    assert response.status_code == 200, response.text
    enrolment = response.json()
    assert enrolment["otpauth_uri"].startswith("otpauth://totp/") and enrolment["secret"] in enrolment["otpauth_uri"]
    assert base64.b64decode(enrolment["qr_png_base64"]).startswith(b"\x89PNG")
    first = code(enrolment["secret"])
    response = await http.post("/api/v1/auth/mfa/confirm", headers=headers, json={"code": first})
    assert response.status_code == 200, response.text
    return enrolment["secret"], response.json()["recovery_codes"], first


async def challenge(http, email: str, password: str = PASSWORD) -> str:
    response = await login(http, email, password)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mfa_required"] is True and "access_token" not in body
    return body["mfa_token"]


async def verify(http, mfa_token: str, value: str):
    return await http.post("/api/v1/auth/mfa/verify", json={"mfa_token": mfa_token, "code": value})


async def test_login_in_two_steps_no_code_twice_recovery_codes_once(identity_http, su, db):
    http = identity_http
    user, headers = await make_user(http, su, "member", (await make_org(http, su, roles=())).id)
    email = user["email"]
    secret, recovery, first = await enrol(http, headers)
    assert len(recovery) == 10 and len(set(recovery)) == 10
    assert_error(await http.post("/api/v1/auth/mfa/enroll", headers=headers), 409, "mfa_already_enabled")

    # The code that confirmed the enrolment was used: its time step is not accepted again.
    assert_error(await verify(http, await challenge(http, email), first), 401, "invalid_mfa_code")
    # The next step's code works once (a clock a step ahead), then is refused: a replay.
    mfa_token = await challenge(http, email)
    response = await verify(http, mfa_token, code(secret, 1))
    assert response.status_code == 200, response.text
    assert (await http.get("/api/v1/me", headers=bearer(response.json()))).status_code == 200
    assert_error(await verify(http, mfa_token, code(secret, 1)), 401, "invalid_mfa_code")

    # A recovery code, typed in lower case, once.
    assert (await verify(http, await challenge(http, email), recovery[0].lower())).status_code == 200
    assert_error(await verify(http, await challenge(http, email), recovery[0]), 401, "invalid_mfa_code")
    # The MFA token is no access token, and the password alone gives no tokens.
    assert_error(await http.get("/api/v1/me", headers={"Authorization": f"Bearer {mfa_token}"}), 401)

    # Disabling needs a good code; then the password alone logs in again.
    assert_error(await http.post("/api/v1/auth/mfa/disable", headers=headers, json={"code": "000000"}), 422)
    response = await http.post("/api/v1/auth/mfa/disable", headers=headers, json={"code": recovery[1]})
    assert response.status_code == 204, response.text
    assert "access_token" in (await tokens(http, email, PASSWORD))
    assert {"mfa_enabled", "mfa_recovery_code_used", "mfa_disabled"} <= set(await events(db, user["id"]))


async def test_wrong_codes_count_toward_the_lockout(identity_http, su):
    http = identity_http
    user, headers = await make_user(http, su, "member", (await make_org(http, su, roles=())).id)
    secret, _, _ = await enrol(http, headers)
    wrong = "111111" if code(secret) != "111111" else "222222"
    for _ in range(2):
        assert_error(await verify(http, await challenge(http, user["email"]), wrong), 401, "invalid_mfa_code")
    # The right password starts a new challenge but does not clear the count: the third wrong code locks.
    mfa_token = await challenge(http, user["email"])
    assert_error(await verify(http, mfa_token, wrong), 401, "invalid_mfa_code")
    # Locked: neither a good code nor the password works now.
    assert_error(await verify(http, mfa_token, code(secret, 1)), 401, "unauthorized")
    await refused_login(http, user["email"], PASSWORD)


async def test_organization_requires_mfa_of_its_staff(identity_http, su):
    http = identity_http
    org = await make_org(http, su, roles=("org_admin", "operator", "member"))
    other = await make_org(http, su, roles=("org_admin",))
    policy = f"/api/v1/organizations/{org.id}/mfa-policy"
    assert_error(await http.put(policy, headers=org.headers["operator"], json={"require_mfa_for_staff": True}), 403)
    assert_error(await http.put(policy, headers=other.headers["org_admin"], json={"require_mfa_for_staff": True}), 404)
    response = await http.put(policy, headers=org.headers["org_admin"], json={"require_mfa_for_staff": True})
    assert response.status_code == 200 and response.json() == {"org_id": org.id, "require_mfa_for_staff": True}

    # Staff without MFA: a clear 403 with a token that is good for enrolling and nothing else.
    error = assert_error(await login(http, org.users["operator"]["email"], PASSWORD), 403, "mfa_required")
    enrolment = {"Authorization": f"Bearer {error['details']['enrollment_token']}"}
    assert_error(await http.get("/api/v1/me", headers=enrolment), 401)
    secret, _, _ = await enrol(http, enrolment)
    response = await verify(http, await challenge(http, org.users["operator"]["email"]), code(secret, 1))
    assert response.status_code == 200, response.text
    # Staff cannot turn it off while it is required; members are not concerned.
    response = await http.post("/api/v1/auth/mfa/disable", headers=bearer(response.json()), json={"code": "123456"})
    assert_error(response, 409, "mfa_required")
    assert "access_token" in await tokens(http, org.users["member"]["email"], PASSWORD)
    assert_error(await login(http, org.users["org_admin"]["email"], PASSWORD), 403, "mfa_required")
    await http.put(policy, headers=org.headers["org_admin"], json={"require_mfa_for_staff": False})
    assert "access_token" in await tokens(http, org.users["org_admin"]["email"], PASSWORD)
