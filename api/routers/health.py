import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.errors import error_body

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz():
    return {"status": "ok"}


@router.get(
    "/readyz", summary="Postgres (and its read replica, if set) and Temporal are reachable (503 naming which is not)"
)
async def readyz(request: Request):
    checks = {}
    db = request.app.state.db
    sessions = {"database": db.session}
    if db.read_engine is not db.engine:  # DATABASE_READ_URL: the lists read the replica
        sessions["read_replica"] = db.read_session
    for name, session_of in sessions.items():
        try:
            async with session_of() as session:
                await asyncio.wait_for(session.execute(text("SELECT 1")), timeout=3)
            checks[name] = "ok"
        except Exception as exc:  # any failure means not ready; say which
            checks[name] = f"unreachable: {type(exc).__name__}: {exc}"[:300]
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
