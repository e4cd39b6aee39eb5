"""An API server of the identity tests' own: the session's stack with lockout and MFA settings short enough to see
a lock begin and end within a test, apart from the session's API (whose users other tests log in as)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import text

from core.config import Settings
from tests.conftest import ApiServer, assert_error

# Long enough that a lock outlasts the few requests a test makes during it on a loaded machine (each login hashes).
LOCKOUT = dict(
    lockout_threshold=3,
    lockout_window=timedelta(seconds=120),
    lockout_duration=timedelta(seconds=30),
    lockout_max_duration=timedelta(seconds=300),
)
PASSWORD = "a-long-test-password"  # tests.conftest.make_user's


@asynccontextmanager
async def identity_api(settings: Settings, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an API server with the LOCKOUT settings (each test module's `identity_http` fixture)."""
    async with (
        ApiServer(settings.model_copy(update={**LOCKOUT, **overrides})) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
    ):
        yield client


async def login(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await http.post("/api/v1/auth/login", data={"username": email, "password": password})


async def tokens(http: httpx.AsyncClient, email: str, password: str) -> dict:
    response = await login(http, email, password)
    assert response.status_code == 200 and "access_token" in response.json(), response.text
    return response.json()


def bearer(pair: dict) -> dict:
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def refused_login(http: httpx.AsyncClient, email: str, password: str) -> dict:
    return assert_error(await login(http, email, password), 401, "unauthorized")


async def events(db, user_id: str) -> list[str]:
    async with db.session() as session:
        rows = await session.execute(
            text("SELECT event FROM security_events WHERE user_id = :u ORDER BY created_at"), {"u": user_id}
        )
        return [row.event for row in rows]
