"""Rate limits on the real stack: a 429 with Retry-After, the RateLimit-* headers and the error body, logged as a
security event; buckets per identity (a user, an API key, an address) and per group; strict limits on sign-in by
address; and one bucket shared by two API processes through Postgres.

The session's API keeps the generous defaults; these tests start API servers of their own with strict limits,
sharing the session's database. Their identities are their own (new users, keys, and loopback addresses other than
127.0.0.1, which the rest of the suite signs in from), so no other test meets their buckets."""

import asyncio
import logging
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import event, text

from core.rate_limit import Identity, RateLimiter
from devstack import processes
from tests.conftest import ApiServer, assert_error, make_org, make_user

V1 = "/api/v1"
STRICT = {"rate_limit_reads": "3/minute", "rate_limit_auth": "2/minute", "rate_limit_writes": "3/minute"}


@pytest.fixture(scope="module")
async def strict(settings) -> AsyncIterator[ApiServer]:
    async with ApiServer(settings.model_copy(update=STRICT)) as server:
        yield server


@asynccontextmanager
async def client(url: str, address: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests come from `address` (any 127.x.y.z is this machine's loopback)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=30) as http:
        yield http


async def test_past_the_limit_a_429_with_retry_after_and_ratelimit_headers(strict, http, su, caplog):
    caplog.set_level(logging.WARNING, logger="security")
    _, member = await make_user(http, su, "member", (await make_org(http, su, roles=())).id)
    async with client(strict.url) as api:
        remaining = []
        for _ in range(3):
            response = await api.get(f"{V1}/me", headers=member)
            assert response.status_code == 200, response.text
            assert response.headers["RateLimit-Limit"] == "3"
            remaining.append(response.headers["RateLimit-Remaining"])
        assert remaining == ["2", "1", "0"]
        refused = await api.get(f"{V1}/me", headers=member)
    error = assert_error(refused, 429, "rate_limited")
    assert error["details"]["group"] == "reads"
    assert 1 <= int(refused.headers["Retry-After"]) <= 20  # a token every 20 s
    assert refused.headers["RateLimit-Remaining"] == "0" and int(refused.headers["RateLimit-Reset"]) <= 60
    events = [r for r in caplog.records if r.name == "security" and r.getMessage() == "rate_limited"]
    assert events and events[-1].group == "reads" and events[-1].identity.startswith("user:")


async def test_buckets_are_per_identity_and_per_group(strict, http, su):
    org = await make_org(http, su, roles=("org_admin", "member"))
    _, other = await make_user(http, su, "member", org.id)
    key = (
        await http.post(
            f"{V1}/api-keys",
            headers={**org.headers["org_admin"], "Idempotency-Key": uuid.uuid4().hex},
            json={"name": "limits", "scopes": ["payments:read"]},
        )
    ).json()
    member = org.headers["member"]
    async with client(strict.url) as api:
        for _ in range(3):
            assert (await api.get(f"{V1}/me", headers=member)).status_code == 200
        assert_error(await api.get(f"{V1}/me", headers=member), 429)
        # Another user, the org admin's API key (a bucket of its own, its tier twice a member's) and another group
        # of the same member are untouched.
        assert (await api.get(f"{V1}/me", headers=other)).status_code == 200
        keyed = await api.get(f"{V1}/me", headers={"X-API-Key": key["key"]})
        assert keyed.status_code == 200 and keyed.headers["RateLimit-Limit"] == "6"
        assert (await api.get(f"{V1}/me", headers=org.headers["org_admin"])).status_code == 200
        write = await api.post(f"{V1}/notifications/{uuid.uuid4()}/read", headers=member)
        assert write.status_code == 404 and write.headers["RateLimit-Limit"] == "3"  # past the limiter
    # A made-up key counts against its sender's address, not a bucket of its own: inventing keys gains nothing.
    async with client(strict.url, "127.0.0.4") as api:
        statuses = [
            (await api.get(f"{V1}/me", headers={"X-API-Key": f"bo_{uuid.uuid4().hex[:12]}_{'x' * 43}"})).status_code
            for _ in range(4)
        ]
    assert statuses == [401, 401, 401, 429]


async def test_sign_in_is_limited_strictly_by_address_and_health_never(strict, http, su):
    email, password = f"limited-{uuid.uuid4().hex[:8]}@tests.example", "a-long-test-password"
    org = await make_org(http, su, roles=())
    response = await http.post(
        f"{V1}/users",
        headers=su,
        json={"email": email, "full_name": "Limited", "password": password, "role": "member", "org_id": org.id},
    )
    assert response.status_code == 201, response.text
    async with client(strict.url, "127.0.0.2") as api:
        wrong = {"username": email, "password": "not-the-password"}
        assert [(await api.post(f"{V1}/auth/login", data=wrong)).status_code for _ in range(2)] == [401, 401]
        refused = await api.post(f"{V1}/auth/login", data={"username": email, "password": password})
        assert_error(refused, 429, "rate_limited")
        assert refused.headers["RateLimit-Limit"] == "2" and int(refused.headers["Retry-After"]) >= 1
        for path in ("/healthz", "/readyz"):
            answers = [await api.get(path) for _ in range(4)]
            assert all(a.status_code in (200, 503) for a in answers), [a.text for a in answers]
            assert all("RateLimit-Limit" not in a.headers for a in answers)
    async with client(strict.url, "127.0.0.3") as api:  # another address has its own bucket
        assert (await api.post(f"{V1}/auth/login", data={"username": email, "password": password})).status_code == 200


async def test_a_bucket_check_is_one_statement(settings):
    limiter = RateLimiter(settings.model_copy(update=STRICT))
    statements: list[str] = []
    event.listen(limiter.engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    who = Identity(f"ip:test-{uuid.uuid4().hex}", "anonymous")
    count = 50
    try:
        await limiter.take("reads", who)  # the pool's first connection
        statements.clear()
        started = time.perf_counter()
        decisions = [await limiter.take("reads", who) for _ in range(count)]
        per_check = (time.perf_counter() - started) / count * 1000
        checks = list(statements)
        started = time.perf_counter()  # the baseline: the cheapest round trip on the same pool
        for _ in range(count):
            async with limiter.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        per_select = (time.perf_counter() - started) / count * 1000
    finally:
        await limiter.close()
    assert len(checks) == count and all("INSERT INTO rate_limit_buckets" in s for s in checks)
    assert [d.allowed for d in decisions[:2]] == [True, True] and not decisions[-1].allowed
    print(
        f"\nrate limit: one statement per check, {per_check:.2f} ms each; SELECT 1 on the same pool {per_select:.2f} ms"
    )


def api_process(settings, port: int, log_dir) -> subprocess.Popen:
    env = {
        "DATABASE_URL": settings.database_url,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "LOG_JSON": "false",
        "RATE_LIMIT_READS": "5/minute",
    }
    args = processes.python(
        "-m",
        "uvicorn",
        "api.main:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    )
    return processes.start(args, env, log_dir / f"api-{port}.log")


async def test_two_api_processes_share_the_bucket(settings, http, su, tmp_path):
    _, member = await make_user(http, su, "member", (await make_org(http, su, roles=())).id)
    ports = [processes.free_port(), processes.free_port()]
    children = [api_process(settings, port, tmp_path) for port in ports]
    try:
        await asyncio.gather(
            *(asyncio.to_thread(processes.wait_for_port, p, c, 90, "api") for p, c in zip(ports, children, strict=True))
        )
        answers = []
        for i in range(6):  # 3 to each process, alternating: a limit of 5 per minute
            async with client(f"http://127.0.0.1:{ports[i % 2]}") as api:
                answers.append(await api.get(f"{V1}/me", headers=member))
    finally:
        for child in children:
            processes.stop(child)
    assert [a.status_code for a in answers] == [200] * 5 + [429], [a.text for a in answers]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["4", "3", "2", "1", "0", "0"]
    assert_error(answers[5], 429, "rate_limited")
