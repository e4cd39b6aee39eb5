import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.errors import error_body

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz():
    return {"status": "ok"}


@router.get("/readyz", summary="Postgres and Temporal are reachable (503 naming which is not)")
async def readyz(request: Request):
    checks = {}
    try:
        async with request.app.state.db.session() as session:
            await asyncio.wait_for(session.execute(text("SELECT 1")), timeout=3)
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; say which
        checks["database"] = f"unreachable: {type(exc).__name__}: {exc}"[:300]
    try:
        client = await request.app.state.temporal.get()
        await asyncio.wait_for(client.service_client.check_health(), timeout=3)
        checks["temporal"] = "ok"
    except Exception as exc:
        checks["temporal"] = f"unreachable: {type(exc).__name__}: {exc}"[:300]
    failing = [name for name, state in checks.items() if state != "ok"]
    if failing:
        return JSONResponse(error_body("not_ready", f"not ready: {', '.join(failing)} unreachable", checks), 503)
    return {"status": "ready", "checks": checks}
