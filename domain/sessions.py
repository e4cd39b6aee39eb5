"""A signed-in session as several routers issue it (login, MFA verification, refresh, a password change): an access
token and a refresh token of a family."""

from pydantic import BaseModel, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from core.config import Settings
from core.security import create_token
from models.users import RefreshToken, User


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


async def issue_tokens(
    session: AsyncSession, settings: Settings, user: User, family_id: str | None = None
) -> TokenPair:
    """A new pair; the refresh token joins `family_id`'s family, or starts one (a login)."""
    claims = {"role": user.role, "org_id": str(user.org_id) if user.org_id else None}
    access, _, _ = create_token(settings, subject=str(user.id), token_type="access", claims=claims)
    refresh, jti, expires_at = create_token(settings, subject=str(user.id), token_type="refresh")
    session.add(RefreshToken(jti=jti, user_id=user.id, family_id=family_id or jti, expires_at=expires_at))
    await session.commit()
    return TokenPair(
        access_token=access, refresh_token=refresh, expires_in=int(settings.access_token_ttl.total_seconds())
    )
