"""A Temporal that does not answer is a 503 to retry with `Retry-After`, never a bare 500: an update no worker takes
in time (a busy or absent worker), and the Temporal service unreachable (issue 10, A5)."""

import httpx
import pytest
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from api.main import create_app
from core.config import Settings


def app_raising(exc: Exception):
    app = create_app(Settings(database_url="postgresql://nobody@127.0.0.1:1/none", log_json=False))

    async def route():
        raise exc

    app.add_api_route("/raise", route)
    return app


async def answer(exc: Exception) -> httpx.Response:
    transport = httpx.ASGITransport(app=app_raising(exc))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/raise")


async def test_an_update_no_worker_takes_in_time_is_a_503_to_retry():
    response = await answer(WorkflowUpdateRPCTimeoutOrCancelledError())
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "workflow_busy"
    assert response.headers["retry-after"] == "5"


@pytest.mark.parametrize("status", [RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED])
async def test_temporal_unreachable_is_a_503_to_retry(status):
    response = await answer(RPCError("connection refused", status, b""))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "temporal_unavailable"


async def test_any_other_unexpected_temporal_error_stays_a_500_bug():
    response = await answer(RPCError("bad request", RPCStatusCode.INVALID_ARGUMENT, b""))
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
