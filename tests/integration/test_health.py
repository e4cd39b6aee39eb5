import httpx

from devstack import processes
from tests.conftest import ApiServer, assert_error


async def test_healthz_and_readyz(http):
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "temporal": "ok"}


async def test_readyz_names_what_is_unreachable(settings):
    closed_port = processes.free_port()
    broken = settings.model_copy(
        update={
            "temporal_address": f"127.0.0.1:{closed_port}",
            "database_url": f"postgresql://postgres@127.0.0.1:{processes.free_port()}/postgres",
        }
    )
    async with ApiServer(broken) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.get("/readyz")
        error = assert_error(response, 503, "not_ready")
        assert error["details"]["database"].startswith("unreachable")
        assert error["details"]["temporal"].startswith("unreachable")
        assert (await client.get("/healthz")).status_code == 200


async def test_readyz_with_only_temporal_down(settings):
    broken = settings.model_copy(update={"temporal_address": f"127.0.0.1:{processes.free_port()}"})
    async with ApiServer(broken) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        error = assert_error(await client.get("/readyz"), 503, "not_ready")
        assert error["details"]["database"] == "ok"
        assert "temporal" in error["message"]
