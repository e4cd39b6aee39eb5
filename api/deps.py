"""Request dependencies: settings, a database session, the Temporal client, the authenticated user (a person with
an access token, or a machine client with an API key acting as its creator: core/api_keys.py)."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated

import jwt
from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import HTTPConnection
from temporalio.client import Client

from api.errors import AppError
from api.fields import KEY_PATTERN
from core import access, api_keys
from core.access import Action, Entity
from core.cache import reference
from core.config import Settings
from core.crypto import AccountNumberCipher, FileCipher
from core.db import Database
from core.security import TokenType, decode_token
from core.temporal import connect
from models.api_keys import ApiKey
from models.users import User

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)
api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="an API key (`bo_...`), read when there is no Authorization header; `Authorization: Bearer bo_...` "
    "works too",
)
# A key's last-used time is written at most this often (not a write per request).
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TemporalConnection:
    """Connects on first use and reconnects after a failure, so the API starts (and /readyz can say
    what is wrong) even while Temporal is down."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await asyncio.wait_for(connect(self.settings), timeout=5)
        return self._client


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_db(request: Request) -> Database:
    return request.app.state.db


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.db.session() as session:
        yield session


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A read-only session on the read replica (DATABASE_READ_URL; the primary when unset): for list endpoints,
    never for one that writes after reading or must see what the caller has just written."""
    async with request.app.state.db.read_session() as session:
        yield session


async def get_temporal(request: Request) -> Client:
    try:
        return await request.app.state.temporal.get()
    except Exception as exc:
        raise AppError(503, "temporal_unavailable", "the workflow service is not reachable", str(exc)) from exc


def get_cipher(request: Request) -> AccountNumberCipher:
    return request.app.state.cipher


def get_file_cipher(request: Request) -> FileCipher:
    return request.app.state.file_cipher


def get_client_ip(request: Request) -> str | None:
    """The caller's address, for security events (the proxy's when one is in front: uvicorn --proxy-headers)."""
    return request.client.host if request.client else None


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
ClientIp = Annotated[str | None, Depends(get_client_ip)]
DbDep = Annotated[Database, Depends(get_db)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
CipherDep = Annotated[AccountNumberCipher, Depends(get_cipher)]
FileCipherDep = Annotated[FileCipher, Depends(get_file_cipher)]


def unauthorized(message: str) -> AppError:
    return AppError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


async def get_current_user(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2)],
    api_key: Annotated[str | None, Depends(api_key_header)],
) -> User:
    """The token's user, through the reference-data cache (core/cache): a detached copy, its password hash blank. A
    user disabled, or whose role or organization changes, is dropped from every process's cache at the change. An
    API key (a bearer token starting `bo_`, or X-API-Key when there is no Authorization header) gives its creator,
    once its scopes allow the endpoint."""
    if token and api_keys.looks_like_key(token):
        return await key_principal(request, db, token)
    if not token and api_key:
        return await key_principal(request, db, api_key)
    return await user_of_token(db, settings, token, "access")


async def user_of_token(db: Database, settings: Settings, token: str | None, token_type: TokenType) -> User:
    if not token:
        raise unauthorized("a bearer access token is required")
    try:
        payload = decode_token(settings, token, token_type)
    except jwt.ExpiredSignatureError:
        raise unauthorized("the access token has expired") from None
    except jwt.InvalidTokenError as exc:
        raise unauthorized(f"the access token is not valid: {exc}") from exc
    user = await reference.user(db, payload["sub"])
    if user is None or not user.is_active:
        raise unauthorized("the user of this token no longer exists or is disabled")
    # A password reset or change ends the sessions begun before it (to the second: a JWT's iat has no more).
    if user.tokens_valid_after and payload["iat"] < int(user.tokens_valid_after.timestamp()):
        raise unauthorized("this session ended when the password was changed; sign in again")
    return user


async def key_principal(request: HTTPConnection, db: Database, presented: str) -> User:
    """The user an API key acts as, when the key is genuine, unexpired and unrevoked, its creator still active in
    the key's organization, and the key has the scope of this endpoint (through the access policy: a 403 otherwise).
    No scope reaches the keys themselves or sign-in: a key never makes or widens a key."""
    parsed = api_keys.parse(presented)
    if parsed is None:
        raise unauthorized("the API key is not valid")
    prefix, secret = parsed
    now = datetime.now(UTC)
    async with db.session() as session:
        key = (await session.exec(select(ApiKey).where(ApiKey.prefix == prefix))).first()
        if key is None or not api_keys.secret_matches(secret, key.secret_hash):
            raise unauthorized("the API key is not valid")
        if key.revoked_at is not None:
            raise unauthorized("this API key has been revoked")
        if key.expires_at <= now:
            raise unauthorized("this API key has expired")
        if key.last_used_at is None or key.last_used_at < now - LAST_USED_RESOLUTION:
            # Conditional, so that of several processes seeing it stale at once one writes (a no-op for the others).
            stale = or_(col(ApiKey.last_used_at).is_(None), col(ApiKey.last_used_at) < now - LAST_USED_RESOLUTION)
            await session.execute(update(ApiKey).where(col(ApiKey.id) == key.id, stale).values(last_used_at=now))
            await session.commit()
    user = await reference.user(db, key.created_by)
    if user is None or not user.is_active or user.org_id != key.org_id:
        raise unauthorized("the user who created this API key no longer exists, is disabled or has moved")
    # The path asked (its first segment names the resource; a route's own path may lack its router's prefix).
    # (A WebSocket's upgrade is a GET: its scope has no method.)
    needed = api_keys.scope_for(request.url.path, request.scope.get("method", "GET"))
    access.check_key_scope(user, key.id, key.scopes, needed)
    api_keys.acting_key.set(key.id)  # this request's task: its audit rows name the key
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_enrolling_user(db: DbDep, settings: SettingsDep, token: Annotated[str | None, Depends(oauth2)]) -> User:
    """The user of an access token, or of the enrolment token that staff get instead of tokens when their
    organization requires MFA and they have none yet (good for enrolling and nothing else)."""
    try:
        return await user_of_token(db, settings, token, "access")
    except AppError:
        return await user_of_token(db, settings, token, "mfa_enroll")


EnrollingUser = Annotated[User, Depends(get_enrolling_user)]


def allowed(entity: Entity, action: Action) -> Callable[[User], Awaitable[User]]:
    """The signed-in user, when the access policy gives their role this operation (core/access.py GATES)."""

    async def check(user: CurrentUser) -> User:
        access.gate(user, entity, action)
        return user

    return check


IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=KEY_PATTERN,
        description="a unique key per intended operation (visible ASCII); a retry reuses it",
    ),
]
