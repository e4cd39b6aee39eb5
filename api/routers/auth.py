import uuid
from datetime import UTC, datetime
from typing import Annotated

import jwt
from fastapi import APIRouter, Form
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlmodel import select

from api.deps import CurrentUser, SessionDep, SettingsDep, unauthorized
from api.fields import Token, line_rules
from core.config import Settings
from core.security import create_token, decode_token, hash_password, verify_password
from domain.users import UserOut
from models.users import RefreshToken, User

router = APIRouter(prefix="/auth", tags=["auth"])

# Verifying against this when the email is unknown keeps login time the same for both cases.
_DUMMY_HASH = hash_password("not-a-real-password")


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds until the access token expires")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "access_token": "eyJhbGciOi...",
                    "refresh_token": "eyJhbGciOi...",
                    "token_type": "bearer",
                    "expires_in": 900,
                }
            ]
        }
    }


class RefreshRequest(BaseModel):
    refresh_token: Token = Field(examples=["eyJhbGciOi..."])


async def issue_tokens(session, settings: Settings, user: User) -> TokenPair:
    claims = {"role": user.role, "org_id": str(user.org_id) if user.org_id else None}
    access, _, _ = create_token(settings, subject=str(user.id), token_type="access", claims=claims)
    refresh, jti, expires_at = create_token(settings, subject=str(user.id), token_type="refresh")
    session.add(RefreshToken(jti=jti, user_id=user.id, expires_at=expires_at))
    await session.commit()
    return TokenPair(
        access_token=access, refresh_token=refresh, expires_in=int(settings.access_token_ttl.total_seconds())
    )


@router.post("/login", response_model=TokenPair, summary="Log in with email and password (OAuth2 password form)")
async def login(
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
    in any field are a 422."""
    user = (await session.exec(select(User).where(User.email == username.strip().lower()))).first()
    valid, new_hash = verify_password(password, user.hashed_password if user else _DUMMY_HASH)
    if user is None or not valid:
        raise unauthorized("incorrect email or password")
    if not user.is_active:
        raise unauthorized("this user is disabled")
    if new_hash:
        user.hashed_password = new_hash
        session.add(user)
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
                "RETURNING user_id"
            ),
            {"now": now, "jti": payload["jti"]},
        )
    ).first()
    if claimed is None:
        # A used or revoked token presented again: it may be stolen, so end every session of that user.
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
    return await issue_tokens(session, settings, user)


me_router = APIRouter(tags=["auth"])


@me_router.get("/me", response_model=UserOut, summary="The authenticated user")
async def me(user: CurrentUser):
    return user
