"""The live updates WebSocket, `GET /api/v1/ws`: signed in like the API (an access token as `?token=` or as
`Authorization: Bearer` on the upgrade request; an API key with the notifications:read scope too), then JSON events
`{"type", "data"}` as they happen: `hello` first, then `notification`, `transaction_changes`, `presence`. Refused
with close code 4401 (no valid token; 1008 for an API key without the scope). The socket ends at the token's expiry
(4401: reconnect with a fresh token). Events come from every API process through core/live."""

import asyncio
import contextlib
import time

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketState

from api.deps import key_principal, user_of_token
from api.errors import AppError
from core import access, api_keys
from core.live.hub import Outbox
from core.live.listener import LiveUpdates
from core.security import decode_token
from models.users import User

router = APIRouter(tags=["live updates"])

UNAUTHORIZED = 4401  # 4000-4999: the application's; 4401 mirrors HTTP 401
POLICY = 1008  # a valid principal not allowed here
TRY_AGAIN = 1013  # fell too far behind: reconnect and reload


def _presented(websocket: WebSocket) -> str | None:
    if token := websocket.query_params.get("token"):
        return token
    scheme, _, credentials = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    return websocket.headers.get("x-api-key")


async def _principal(websocket: WebSocket, token: str | None) -> tuple[User, float | None]:
    """The user and when their token expires (None for an API key: checked at connection only)."""
    db, settings = websocket.app.state.db, websocket.app.state.settings
    if token and api_keys.looks_like_key(token):
        return await key_principal(websocket, db, token), None
    user = await user_of_token(db, settings, token, "access")
    assert token is not None  # user_of_token refuses a missing one
    return user, float(decode_token(settings, token, "access")["exp"])


@router.websocket("/ws")
async def live_updates(websocket: WebSocket) -> None:
    await websocket.accept()  # accepted first, so that a refusal reaches the client as a close code
    try:
        user, expires = await _principal(websocket, _presented(websocket))
    except AppError as refused:
        await websocket.close(UNAUTHORIZED, refused.message[:120])
        return
    except access.AccessDenied as refused:
        await websocket.close(POLICY, str(refused)[:120])
        return
    live: LiveUpdates = websocket.app.state.live
    outbox = await live.connected(user.id)
    try:
        await websocket.send_json({"type": "hello", "data": {"user_id": str(user.id)}})
        await _serve(websocket, outbox, expires)
    finally:
        await live.disconnected(user.id, outbox)


async def _serve(websocket: WebSocket, outbox: Outbox, expires: float | None) -> None:
    """Events out until the client leaves, falls behind or its token expires (what the client sends is ignored)."""
    reader = asyncio.create_task(_until_disconnect(websocket))
    writer = asyncio.create_task(_pump(websocket, outbox))
    timeout = None if expires is None else max(expires - time.time(), 0)
    done, _ = await asyncio.wait({reader, writer}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for task in (reader, writer):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if reader in done or websocket.client_state != WebSocketState.CONNECTED:
        return
    with contextlib.suppress(Exception):  # the client may be gone already
        if writer in done:
            await websocket.close(TRY_AGAIN, "too many events behind: reconnect")
        else:
            await websocket.close(UNAUTHORIZED, "the access token has expired: reconnect with a fresh one")


async def _until_disconnect(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def _pump(websocket: WebSocket, outbox: Outbox) -> None:
    while (frame := await outbox.queue.get()) is not None:
        await websocket.send_text(frame)
