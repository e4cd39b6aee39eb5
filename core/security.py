"""Passwords (argon2 through pwdlib) and JWTs (PyJWT): short-lived access, rotating refresh tokens."""

import asyncio
import functools
import hashlib
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

import jwt
from pwdlib import PasswordHash

from core.config import Settings

password_hash = PasswordHash.recommended()  # argon2id
T = TypeVar("T")

# access and refresh: the session. mfa: the login's challenge, traded with a code at /auth/mfa/verify. mfa_enroll:
# staff whose organization requires MFA and who have none yet: good for enrolling and nothing else.
# reset: an emailed password-reset token (also stored, hashed, for single use).
TokenType = Literal["access", "refresh", "mfa", "mfa_enroll", "reset"]


def token_ttl(settings: Settings, token_type: TokenType) -> timedelta:
    return {
        "access": settings.access_token_ttl,
        "refresh": settings.refresh_token_ttl,
        "mfa": settings.mfa_challenge_ttl,
        "mfa_enroll": settings.mfa_challenge_ttl,
        "reset": settings.password_reset_ttl,
    }[token_type]


def hash_password(password: str) -> str:
    return password_hash.hash(password)


def verify_password(password: str, hashed: str) -> tuple[bool, str | None]:
    """(valid, new hash when the stored one uses outdated parameters)."""
    return password_hash.verify_and_update(password, hashed)


# argon2 runs off the event loop (it releases the GIL), on two threads at most: requests go on meanwhile, and a burst
# of logins queues here instead of running dozens of 64 MiB hashes at once on a small machine.
_HASHING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` (a hash or a verification) on the hashing threads."""
    return await asyncio.get_running_loop().run_in_executor(_HASHING, functools.partial(fn, *args))


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
    ttl = token_ttl(settings, token_type)
    jti = uuid.uuid4().hex
    expires_at = now + ttl
    payload = {"sub": subject, "type": token_type, "jti": jti, "iat": now, "exp": expires_at, **(claims or {})}
    token = jwt.encode(payload, settings.jwt_secret.get_secret_value(), algorithm=settings.jwt_algorithm)
    return token, jti, expires_at


def decode_token(
    settings: Settings, token: str, expected_type: TokenType, *, verify_exp: bool = True
) -> dict[str, Any]:
    """Raises jwt.InvalidTokenError (incl. ExpiredSignatureError) on anything wrong."""
    payload = jwt.decode(
        token,
        settings.jwt_secret.get_secret_value(),
        algorithms=[settings.jwt_algorithm],
        options={"require": ["sub", "exp", "iat", "type", "jti"], "verify_exp": verify_exp},
    )
    if payload.get("type") != expected_type:
        raise jwt.InvalidTokenError(f"expected a {expected_type} token")
    return payload


def token_digest(token: str) -> str:
    """The SHA-256 stored in place of a single-use secret (a reset token, a recovery code): enough for a random
    secret of 128 bits or more, which no one can guess back from it."""
    return hashlib.sha256(token.encode()).hexdigest()
