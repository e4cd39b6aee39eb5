"""An unexpected exception answers a 500 error body and never poisons the keep-alive connection (issue 10, A5):
the app of api.main with one route added that raises, served by a real uvicorn on loopback, and one client."""

import asyncio

import httpx
import uvicorn
from fastapi import Request

from api.main import create_app
from core.config import Settings
from devstack import processes


async def test_after_a_500_the_next_request_on_the_same_connection_succeeds():
    # No database or Temporal is reached by these routes; the engine is created but never connects.
    app = create_app(Settings(database_url="postgresql://nobody@127.0.0.1:1/none", log_json=False))

    async def boom():
        raise RuntimeError("a bug")

    async def peer(request: Request):
        return {"port": request.client.port}  # type: ignore[union-attr]  # a TCP client always has an address

    app.add_api_route("/boom", boom)
    app.add_api_route("/peer", peer)
    port = processes.free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), task
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            before = (await client.get("/peer")).json()["port"]
            failed = await client.get("/boom")
            assert failed.status_code == 500
            assert failed.json() == {
                "error": {"code": "internal_error", "message": "an unexpected error occurred", "details": None}
            }
            assert failed.headers.get("connection") != "close"
            await asyncio.sleep(0.2)  # time for a server that drops the connection to have dropped it
            after = await client.get("/peer")
            assert after.status_code == 200
            assert after.json()["port"] == before, "the 500 closed the keep-alive connection"
            assert failed.headers.get("x-request-id")  # the correlation id is on the 500 too
    finally:
        server.should_exit = True
        await task
