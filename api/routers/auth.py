"""Sign-in: the password login (lockout, MFA in two steps, the organization's MFA requirement for staff), rotating
refresh tokens in families, logout."""

import uuid
from datetime import UTC, datetime
from typing import Annotated

import jwt
from fastapi import APIRouter, Form, Response
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlmodel import select

from api.deps import CipherDep, ClientIp, CurrentUser, SessionDep, SettingsDep, unauthorized
from api.errors import AppError
from api.fields import MfaCode, Token, line_rules
from core.config import Settings
from core.security import create_token, decode_token, hash_password, off_loop, token_ttl, verify_password
from domain import lockout, mfa, security_events
from domain.sessions import TokenPair, issue_tokens
from domain.users import UserOut
from models.users import User

router = APIRouter(prefix="/auth", tags=["auth"])

# Verifying against this when the email is unknown keeps login time the same for both cases.
_DUMMY_HASH = hash_password("not-a-real-password")
# One answer for a wrong email, a wrong password and a locked account: none tells whether the email exists.
_REFUSED = "incorrect email or password, or the account is locked for a while after too many failed attempts"


class MfaChallenge(BaseModel):
    """The first step of a login with MFA on: send `mfa_token` with a code to POST /auth/mfa/verify."""

    mfa_required: bool = True
    mfa_token: str
    expires_in: int = Field(description="seconds until the challenge expires")


class RefreshRequest(BaseModel):
    refresh_token: Token = Field(examples=["eyJhbGciOi..."])


class MfaVerifyRequest(BaseModel):
    mfa_token: Token
    code: MfaCode


async def _second_step(session, settings: Settings, user: User) -> TokenPair | MfaChallenge:
    """After the password: a challenge when MFA is on; a 403 mfa_required (with a token good only for enrolling)
    for staff whose organization requires MFA and who have none; tokens otherwise."""
    if await mfa.enabled(session, user.id):
        await session.commit()
        challenge, _, _ = create_token(settings, subject=str(user.id), token_type="mfa")
        return MfaChallenge(mfa_token=challenge, expires_in=int(token_ttl(settings, "mfa").total_seconds()))
    if await mfa.required_by_organization(session, user):
        await session.commit()
        enrolment, _, _ = create_token(settings, subject=str(user.id), token_type="mfa_enroll")
        raise AppError(
            403,
            "mfa_required",
            "your organization requires MFA of its staff: enrol with this enrolment token (POST /auth/mfa/enroll, "
            "then POST /auth/mfa/confirm), then log in again",
            {
                "enrollment_token": enrolment,
                "expires_in": int(token_ttl(settings, "mfa_enroll").total_seconds()),
                "enroll": "/api/v1/auth/mfa/enroll",
            },
        )
    # The count of failures is cleared only when tokens are issued: a password alone, with MFA on, must not reset it
    # (or whoever has the password could guess codes for ever, a few at a time).
    await lockout.record_success(session, user.id)
    return await issue_tokens(session, settings, user)


@router.post(
    "/login",
    response_model=TokenPair | MfaChallenge,
    summary="Log in with email and password (OAuth2 password form); with MFA on, the first of two steps",
)
async def login(
    ip: ClientIp,
    username: Annotated[str, *line_rules(320, 1), Form(description="the email")],
    password: Annotated[str, *line_rules(128, 1), Form(json_schema_extra={"format": "password"})],
    session: SessionDep,
    settings: SettingsDep,
    grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
    scope: Annotated[str, *line_rules(1000), Form()] = "",
    client_id: Annotated[Annotated[str, *line_rules(200)] | None, Form()] = None,
    client_secret: Annotated[
        Annotated[str, *line_rules(200)] | None, Form(json_schema_extra={"format": "password"})
    ] = None,
):
    """The OAuth2 password form (`username`, `password`; the others are accepted and ignored). Control characters
    in any field are a 422. A wrong email, a wrong password and a locked account get the same 401. With MFA on, the
    answer is an MFA challenge instead of tokens: POST /auth/mfa/verify with it and a code."""
    email = username.strip().lower()
    user = (await session.exec(select(User).where(User.email == email))).first()
    # No pooled connection held while the password is hashed (queued behind other logins in a burst).
    await session.commit()  # (a commit, not a rollback: that would expire `user`)
    valid, new_hash = await off_loop(verify_password, password, user.hashed_password if user else _DUMMY_HASH)
    if user is None:
        await security_events.record(session, "login_failed", email=email, client_ip=ip, reason="unknown email")
        await session.commit()
        raise unauthorized(_REFUSED)
    if until := await lockout.locked_until(session, user.id):
        await security_events.record(
            session, "login_refused_locked", user_id=user.id, email=email, client_ip=ip, until=until.isoformat()
        )
        await session.commit()
        raise unauthorized(_REFUSED)
    if not valid:
        await lockout.record_failure(session, settings, user.id, email, ip, "wrong password")
        await session.commit()
        raise unauthorized(_REFUSED)
    if not user.is_active:
        raise unauthorized("this user is disabled")
    if new_hash:
        user.hashed_password = new_hash
        session.add(user)
    return await _second_step(session, settings, user)


@router.post("/mfa/verify", response_model=TokenPair, summary="The second step of a login with MFA: a code")
async def verify_mfa(
    body: MfaVerifyRequest, session: SessionDep, settings: SettingsDep, cipher: CipherDep, ip: ClientIp
):
    """A code of the authenticator app (each 30 s time step is good once) or a recovery code (good once) for the
    login's `mfa_token`. A wrong code counts as a failed login (lockout)."""
    try:
        payload = decode_token(settings, body.mfa_token, "mfa")
    except jwt.InvalidTokenError:
        raise unauthorized("the MFA challenge is not valid or has expired: log in again") from None
    user = await session.get(User, uuid.UUID(payload["sub"]))
    if user is None or not user.is_active:
        raise unauthorized("the user of this challenge no longer exists or is disabled")
    if await lockout.locked_until(session, user.id):
        await security_events.record(session, "mfa_refused_locked", user_id=user.id, email=user.email, client_ip=ip)
        await session.commit()
        raise unauthorized(_REFUSED)
    kind = await mfa.accept_code(session, settings, cipher, user.id, body.code.strip())
    if kind is None:
        await lockout.record_failure(session, settings, user.id, user.email, ip, "wrong MFA code")
        await session.commit()
        raise AppError(401, "invalid_mfa_code", "the code is not valid, or was used already")
    if kind == "recovery":
        await security_events.record(session, "mfa_recovery_code_used", user_id=user.id, email=user.email)
    await lockout.record_success(session, user.id)
    return await issue_tokens(session, settings, user)


@router.post("/refresh", response_model=TokenPair, summary="Trade a refresh token for a new pair (single use)")
async def refresh(body: RefreshRequest, session: SessionDep, settings: SettingsDep):
    try:
        payload = decode_token(settings, body.refresh_token, "refresh")
    except jwt.ExpiredSignatureError:
        raise unauthorized("the refresh token has expired") from None
    except jwt.InvalidTokenError as exc:
        raise unauthorized(f"the refresh token is not valid: {exc}") from exc
    now = datetime.now(UTC)
    # Atomic single use: of two concurrent refreshes with one token, exactly one gets a row back.
    claimed = (
        await session.execute(
            text(
                "UPDATE refresh_tokens SET used_at = :now WHERE jti = :jti AND used_at IS NULL AND revoked_at IS NULL "
                "RETURNING user_id, family_id"
            ),
            {"now": now, "jti": payload["jti"]},
        )
    ).first()
    if claimed is None:
        used = (
            await session.execute(text("SELECT used_at FROM refresh_tokens WHERE jti = :jti"), {"jti": payload["jti"]})
        ).scalar()
        if used is None:  # revoked unused (a logout, a reset) or unknown: refused, nothing more
            raise unauthorized("this refresh token was revoked; sign in again")
        # A used token presented again: one of the two presenters may have stolen it, so end every session of the user.
        await session.execute(
            text("UPDATE refresh_tokens SET revoked_at = :now WHERE user_id = :user AND revoked_at IS NULL"),
            {"now": now, "user": uuid.UUID(payload["sub"])},
        )
        await session.commit()
        raise unauthorized("this refresh token was already used or revoked; sign in again")
    user = await session.get(User, claimed.user_id)
    if user is None or not user.is_active:
        await session.commit()
        raise unauthorized("the user of this token no longer exists or is disabled")
    return await issue_tokens(session, settings, user, family_id=claimed.family_id)


@router.post("/logout", status_code=204, response_class=Response, summary="Log out: revoke the refresh token's family")
async def logout(body: RefreshRequest, session: SessionDep, settings: SettingsDep):
    """Revokes the refresh token given and every token of its family (from the login through each refresh). The
    access token lives on until it expires (minutes): drop it."""
    try:
        # An expired token still names its family, whose newest token may be alive.
        payload = decode_token(settings, body.refresh_token, "refresh", verify_exp=False)
    except jwt.InvalidTokenError as exc:
        raise unauthorized(f"the refresh token is not valid: {exc}") from exc
    await session.execute(
        text(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND family_id = "
            "(SELECT family_id FROM refresh_tokens WHERE jti = :jti)"
        ),
        {"jti": payload["jti"]},
    )
    await session.commit()
    return Response(status_code=204)


me_router = APIRouter(tags=["auth"])


@me_router.get("/me", response_model=UserOut, summary="The authenticated user")
async def me(user: CurrentUser):
    return user
