"""Passwords (argon2 through pwdlib) and JWTs (PyJWT): short-lived access, rotating refresh tokens."""

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import jwt
from pwdlib import PasswordHash

from core.config import Settings

password_hash = PasswordHash.recommended()  # argon2id

TokenType = Literal["access", "refresh"]


def hash_password(password: str) -> str:
    return password_hash.hash(password)


def verify_password(password: str, hashed: str) -> tuple[bool, str | None]:
    """(valid, new hash when the stored one uses outdated parameters)."""
    return password_hash.verify_and_update(password, hashed)


def create_token(
    settings: Settings,
    *,
    subject: str,
    token_type: TokenType,
    claims: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> tuple[str, str, datetime]:
    """Returns (token, jti, expires_at)."""
    now = now or datetime.now(UTC)
    ttl = settings.access_token_ttl if token_type == "access" else settings.refresh_token_ttl
    jti = uuid.uuid4().hex
    expires_at = now + ttl
    payload = {"sub": subject, "type": token_type, "jti": jti, "iat": now, "exp": expires_at, **(claims or {})}
    token = jwt.encode(payload, settings.jwt_secret.get_secret_value(), algorithm=settings.jwt_algorithm)
    return token, jti, expires_at


def decode_token(settings: Settings, token: str, expected_type: TokenType) -> dict[str, Any]:
    """Raises jwt.InvalidTokenError (incl. ExpiredSignatureError) on anything wrong."""
    payload = jwt.decode(
        token,
        settings.jwt_secret.get_secret_value(),
        algorithms=[settings.jwt_algorithm],
        options={"require": ["sub", "exp", "iat", "type", "jti"]},
    )
    if payload.get("type") != expected_type:
        raise jwt.InvalidTokenError(f"expected a {expected_type} token")
    return payload
