"""The read replica for real: a streaming standby of the session's Postgres (pg_basebackup -R), and an API whose
DATABASE_READ_URL points at it. With the standby's replay paused, a list misses what the primary has just
written (so lists read the replica), while the write's answer and the detail read show it (the primary)."""

import uuid

import httpx
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from devstack.postgres import streaming_standby
from tests.conftest import ApiServer, make_org
from tests.polling import poll


@pytest.fixture(scope="module")
def replica_url(database_url, tmp_path_factory):
    with streaming_standby(database_url, tmp_path_factory.mktemp("replica") / "data") as url:
        yield url


@pytest.fixture(scope="module")
async def replica_api(settings, worker, replica_url):
    server = ApiServer(settings.model_copy(update={"database_read_url": replica_url}))
    async with server, httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


def replay(replica_url: str, action: str) -> None:
    with psycopg.connect(replica_url, autocommit=True) as conn:
        conn.execute(f"SELECT pg_wal_replay_{action}()")


async def test_lists_read_the_replica_and_a_write_answers_from_the_primary(replica_api, http, su, replica_url):
    org = await make_org(http, su, roles=("member",))

    async def listed() -> set[str]:
        response = await replica_api.get("/api/v1/accounts", params={"org_id": org.id}, headers=su)
        assert response.status_code == 200, response.text
        return {a["id"] for a in response.json()["items"]}

    async def open_(client: httpx.AsyncClient) -> dict:
        name = f"replica {uuid.uuid4().hex[:6]}"
        response = await client.post(
            "/api/v1/accounts", headers=su, json={"name": name, "type": "checking", "org_id": org.id}
        )
        assert response.status_code == 201, response.text
        assert response.json()["name"] == name
        return response.json()

    first = await open_(http)
    await poll(listed, lambda ids: first["id"] in ids, 30, "the replica never showed the account")

    replay(replica_url, "pause")
    try:
        second = await open_(replica_api)  # written to the primary, answered from it: read-your-writes
        detail = await replica_api.get(f"/api/v1/accounts/{second['id']}", headers=su)
        assert detail.status_code == 200, detail.text  # the detail read is the primary's
        assert await listed() == {first["id"]}  # the list is the paused replica's
    finally:
        replay(replica_url, "resume")
    await poll(listed, lambda ids: ids == {first["id"], second["id"]}, 30, "the replica never caught up")


async def test_readyz_checks_the_replica(replica_api):
    response = await replica_api.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "read_replica": "ok", "temporal": "ok"}


async def test_a_read_session_refuses_writes_on_the_primary_too(db):
    """Without a replica the read session is the primary's, read-only: a write slipped into a list path fails."""
    async with db.read_session() as session:
        with pytest.raises(DBAPIError, match="read-only transaction"):
            await session.execute(text("INSERT INTO organizations (id, name) VALUES (gen_random_uuid(), 'x')"))
