"""Passwords: a change by the signed-in user (the current one required), and a reset by email. Logic in
domain/passwords.py and domain/password_reset.py."""

from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, EmailStr, Field

from api.deps import ClientIp, CurrentUser, SessionDep, SettingsDep
from api.errors import AppError
from api.fields import Token, line_rules
from core.security import off_loop, verify_password
from domain import lockout, password_reset
from domain.passwords import change_password, check_strength
from domain.sessions import TokenPair, issue_tokens
from models.users import User

router = APIRouter(prefix="/auth", tags=["auth"])

NewPassword = Annotated[
    str,
    *line_rules(128, 1),
    Field(
        description="at least 12 characters, hard to guess (zxcvbn score 3 or more), not one of your last 5",
        json_schema_extra={"format": "password"},
    ),
]


class PasswordChange(BaseModel):
    current_password: Annotated[str, *line_rules(128, 1), Field(json_schema_extra={"format": "password"})]
    new_password: NewPassword


class ResetRequest(BaseModel):
    email: EmailStr = Field(examples=["alice@riverside.example"])


class ResetConfirm(BaseModel):
    token: Token = Field(description="the token of the reset email")
    new_password: NewPassword


@router.post(
    "/password",
    response_model=TokenPair,
    summary="Change your password (the current one required); ends every other session",
)
async def change(body: PasswordChange, session: SessionDep, settings: SettingsDep, me: CurrentUser, ip: ClientIp):
    """Every refresh token is revoked and every access token issued before is refused: the answer is a new pair. A
    wrong current password counts as a failed login (lockout); a weak new one is refused before it is checked."""
    user = await session.get(User, me.id, with_for_update=True)
    assert user is not None  # the signed-in user's row
    check_strength(settings, body.new_password, user.email, user.full_name)  # before a guess of the current one
    if not (await off_loop(verify_password, body.current_password, user.hashed_password))[0]:
        await lockout.record_failure(session, settings, user.id, user.email, ip, "wrong password")
        await session.commit()
        raise AppError(422, "wrong_password", "the current password is not right")
    await change_password(session, settings, user, body.new_password)
    await session.commit()
    return await issue_tokens(session, settings, user)


@router.post(
    "/password-reset",
    status_code=202,
    response_class=Response,
    summary="Ask for a password reset email (always 202, whether the address is known or not)",
)
async def request_reset(request: Request, body: ResetRequest, session: SessionDep, settings: SettingsDep, ip: ClientIp):
    await password_reset.request_reset(session, settings, request.app.state.temporal, body.email, ip)
    return Response(status_code=202)


@router.post(
    "/password-reset/confirm",
    status_code=204,
    response_class=Response,
    summary="Set a new password with the emailed token (once); ends every session",
)
async def confirm_reset(body: ResetConfirm, session: SessionDep, settings: SettingsDep, ip: ClientIp):
    await password_reset.confirm_reset(session, settings, body.token, body.new_password, ip)
    return Response(status_code=204)
