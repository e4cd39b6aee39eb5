"""The reference-data cache on the real stack (core/cache): a repeated request is served from it; a change made in
another process (a psql-like connection, or another API) reaches it through Postgres NOTIFY within a short bound; a
change made through this API takes effect at once (a disabled user, a role taken away); with its LISTEN connection
killed the API bypasses the cache, serves nothing stale, reconnects and caches again."""

import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from core.cache import reference
from core.cache.store import Cache, Result
from core.db import Database, libpq_url
from models.users import User
from tests.conftest import ApiServer, assert_error, make_org, open_account
from tests.integration.test_metrics import samples, value
from tests.polling import poll

BOUND = 5.0  # seconds a notification may take to reach the API on a loaded machine (it takes milliseconds)


@dataclass
class CachedApi:
    app: FastAPI
    client: httpx.AsyncClient


@pytest.fixture(scope="module")
async def cached(settings, worker):
    """An API of its own whose cache keeps entries ten minutes, so that only an invalidation explains a fresh read,
    and whose listener waits 3 s before reconnecting, time to see the cache bypassed."""
    tuned = settings.model_copy(update={"cache_ttl_seconds": 600.0, "cache_listener_retry": timedelta(seconds=3)})
    async with ApiServer(tuned) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        await poll(lambda: listening(client), bool, BOUND, "the API's cache listener never came up")
        yield CachedApi(server.app, client)


@pytest.fixture(scope="module")
async def reader(http, su):
    """An organization with a member whose row only changes by name: users cost a password hash each."""
    return await make_org(http, su, roles=("member",))


async def listening(client: httpx.AsyncClient) -> bool:
    return value(samples((await client.get("/metrics")).text), "backoffice_cache_listening") == 1


async def counts(client: httpx.AsyncClient, cache: str = "users") -> dict[str, float]:
    scrape = samples((await client.get("/metrics")).text)
    return {
        result: value(scrape, "backoffice_cache_requests_total", cache=cache, result=result) or 0.0
        for result in ("hit", "miss", "bypass")
    }


def delta(after: dict, before: dict) -> dict:
    return {result: after[result] - before[result] for result in after}


async def sql(settings, statement: str, *params) -> None:
    """A write from another process: a connection of its own, autocommit."""
    async with await psycopg.AsyncConnection.connect(libpq_url(settings.database_url), autocommit=True) as conn:
        await conn.execute(statement, params)


async def me(client: httpx.AsyncClient, headers: dict) -> httpx.Response:
    return await client.get("/api/v1/me", headers=headers)


async def test_a_repeated_request_is_served_from_the_cache(cached, reader):
    client = cached.client
    await me(client, reader.headers["member"])
    before = await counts(client)
    for _ in range(3):
        assert (await me(client, reader.headers["member"])).status_code == 200
    assert delta(await counts(client), before) == {"hit": 3, "miss": 0, "bypass": 0}


async def test_a_change_made_in_another_process_reaches_the_cache_within_a_short_bound(cached, http, su, settings):
    client = cached.client
    org = await make_org(http, su, roles=("member", "org_admin"))
    member, headers = org.users["member"], org.headers["member"]
    await me(client, headers)
    before = await counts(client)
    assert (await me(client, headers)).json()["full_name"] == "Test member"
    assert delta(await counts(client), before)["hit"] == 1  # the name above came from the cache

    await sql(settings, "UPDATE users SET full_name = 'Renamed elsewhere' WHERE id = %s", member["id"])
    await poll(
        lambda: me(client, headers),
        lambda r: r.json()["full_name"] == "Renamed elsewhere",
        BOUND,
        lambda r: f"the cache still serves the old name: {r.json()}",
        interval=0.05,
    )
    before = await counts(client)
    assert (await me(client, headers)).json()["full_name"] == "Renamed elsewhere"
    assert delta(await counts(client), before)["hit"] == 1  # cached again, the new row

    # Another API process (the session's) takes the org admin's role away and disables the member.
    admin = org.headers["org_admin"]
    assert (await client.get("/api/v1/users", headers=admin)).status_code == 200
    changed = await http.patch(f"/api/v1/users/{org.users['org_admin']['id']}", headers=su, json={"role": "operator"})
    assert changed.status_code == 200, changed.text
    await poll(lambda: client.get("/api/v1/users", headers=admin), lambda r: r.status_code == 403, BOUND, "role")
    assert (await http.patch(f"/api/v1/users/{member['id']}", headers=su, json={"is_active": False})).status_code == 200
    await poll(lambda: me(client, headers), lambda r: r.status_code == 401, BOUND, "disabled user", interval=0.05)


async def test_a_change_through_this_api_takes_effect_at_once(cached, http, su):
    client = cached.client
    org = await make_org(http, su, roles=("member", "org_admin"))
    admin, member = org.headers["org_admin"], org.headers["member"]
    for _ in range(2):  # cached
        assert (await client.get("/api/v1/users", headers=admin)).status_code == 200
        assert (await me(client, member)).status_code == 200

    demoted = await client.patch(f"/api/v1/users/{org.users['org_admin']['id']}", headers=su, json={"role": "operator"})
    assert demoted.status_code == 200, demoted.text
    assert_error(await client.get("/api/v1/users", headers=admin), 403)  # no wait: the very next request
    disabled = await client.patch(f"/api/v1/users/{org.users['member']['id']}", headers=su, json={"is_active": False})
    assert disabled.status_code == 200, disabled.text
    assert_error(await me(client, member), 401)


async def test_a_product_changed_elsewhere_is_read_fresh(cached, http, su, settings, reader):
    client = cached.client
    created = await http.post(
        "/api/v1/savings-products",
        headers=su,
        json={"name": f"Saver {uuid.uuid4().hex[:8]}", "annual_rate": "0.0200", "day_count": "actual/365"},
    )
    assert created.status_code == 201, created.text
    product = created.json()
    account = await open_account(http, su, reader.id, type_="savings")
    path = f"/api/v1/accounts/{account['id']}/savings-product"
    assert (await http.put(path, headers=su, json={"product_id": product["id"]})).status_code == 200

    async def rate() -> Decimal:
        response = await client.get(path, headers=su)
        assert response.status_code == 200, response.text
        return Decimal(response.json()["product"]["annual_rate"])

    before = await counts(client, "savings_products")
    assert [await rate(), await rate()] == [Decimal("0.02")] * 2
    assert delta(await counts(client, "savings_products"), before) == {"hit": 1, "miss": 1, "bypass": 0}
    await sql(settings, "UPDATE savings_products SET annual_rate = 0.0300 WHERE id = %s", product["id"])
    await poll(rate, lambda r: r == Decimal("0.03"), BOUND, "the product's old rate", interval=0.05)


async def test_with_its_listener_killed_the_api_bypasses_the_cache_until_it_reconnects(cached, settings, reader):
    client, listener = cached.client, cached.app.state.cache_listener
    member, headers = reader.users["member"], reader.headers["member"]
    await me(client, headers)
    await me(client, headers)  # cached
    killed = listener.backend_pid
    assert killed is not None
    await sql(settings, "SELECT pg_terminate_backend(%s)", killed)

    async def read() -> tuple[dict, httpx.Response]:
        before = await counts(client)
        response = await me(client, headers)
        return delta(await counts(client), before), response

    # The listener notices at once, and the API reads the database again.
    await poll(read, lambda r: r[0]["bypass"] == 1, BOUND, "the cache was still served with its listener dead")
    # A change nobody is told about (no one listens) is read as it is, never the cached row.
    await sql(settings, "UPDATE users SET full_name = 'Changed unheard' WHERE id = %s", member["id"])
    counted, response = await read()
    assert counted == {"hit": 0, "miss": 0, "bypass": 1}
    assert response.json()["full_name"] == "Changed unheard"

    # It reconnects (a new server process) and caches again, starting empty: nothing from before the outage.
    await poll(lambda: _pid(listener), lambda pid: pid not in (None, killed), 15, "the listener never reconnected")
    first, second = await read(), await read()
    assert (first[0]["miss"], second[0]["hit"]) == (1, 1)
    assert first[1].json()["full_name"] == second[1].json()["full_name"] == "Changed unheard"
    # ... and hears changes again.
    await sql(settings, "UPDATE users SET full_name = 'Heard again' WHERE id = %s", member["id"])
    await poll(
        lambda: me(client, headers), lambda r: r.json()["full_name"] == "Heard again", BOUND, "after the reconnect"
    )


async def _pid(listener) -> int | None:
    return listener.backend_pid


async def test_an_orm_write_drops_the_writers_own_entries_at_commit(settings):
    """The writing process does not wait for its notification: its commit drops the entry. No listener runs on this
    cache (it is marked listening by hand), so nothing else can."""
    db = Database(settings.database_url, pool_size=1, cache=Cache(600.0))
    db.cache.set_listening(True)
    user_id = uuid.uuid4()
    try:
        async with db.session() as session:
            session.add(
                User(
                    id=user_id,
                    email=f"hook-{user_id.hex[:8]}@tests.example",
                    full_name="Before",
                    hashed_password="not-a-hash",
                    role="bank_operations",
                )
            )
            await session.commit()
        assert (await reference.user(db, user_id)).full_name == "Before"

        async with db.session() as session:  # rolled back: the entry stays
            row = await session.get(User, user_id)
            row.full_name = "Rolled back"
            await session.flush()
            await session.rollback()
        async with db.session() as session:
            row = await session.get(User, user_id)
            row.full_name = "After"
            await session.flush()
            assert (await reference.user(db, user_id)).full_name == "Before"  # flushed, not committed
            await session.commit()
        assert (await reference.user(db, user_id)).full_name == "After"
        assert (db.cache.counts["users", Result.hit], db.cache.counts["users", Result.miss]) == (1, 2)
    finally:
        await db.close()
