"""A webhook receiver: the stand-in for an organization's endpoint that our webhooks out are sent to.

Each name is its own endpoint (a test or a demo picks one), recording every request it got and answering 200, or
`fail_status` (503 by default) while it is down.

  POST /receiver/{name}            a delivery: recorded with its headers and raw body; 200 {"received": n}, or the
                                   failure status while down (recorded too, as not accepted)
  PUT  /receiver/{name}/_control   {"down": true|false, "fail_status": 503}
  GET  /receiver/{name}/received   {"items": [{"at", "accepted", "status", "headers", "body"}, ...]} oldest first
Not behind the fault injector (app.py): whether it fails is its own control's business."""

import time
from dataclasses import dataclass, field

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

router = APIRouter(prefix="/receiver", tags=["webhook receiver"])

MAX_KEPT = 10_000  # requests kept per name
HEADERS_KEPT = ("content-type", "x-webhook-id", "x-webhook-event", "x-webhook-timestamp", "x-webhook-signature")


@dataclass
class Endpoint:
    down: bool = False
    fail_status: int = 503
    received: list[dict] = field(default_factory=list)


class ReceiverState:
    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}

    def endpoint(self, name: str) -> Endpoint:
        return self.endpoints.setdefault(name, Endpoint())


class Control(BaseModel):
    down: bool | None = None
    fail_status: int | None = Field(default=None, ge=400, le=599)


def _state(request: Request) -> ReceiverState:
    return request.app.state.receiver


@router.post("/{name}")
async def receive(name: str, request: Request) -> Response:
    endpoint = _state(request).endpoint(name)
    body = await request.body()
    status = endpoint.fail_status if endpoint.down else 200
    endpoint.received.append(
        {
            "at": time.time(),
            "accepted": not endpoint.down,
            "status": status,
            "headers": {k: v for k, v in request.headers.items() if k.lower() in HEADERS_KEPT},
            "body": body.decode("utf-8", "replace"),
        }
    )
    del endpoint.received[:-MAX_KEPT]
    if endpoint.down:
        return Response(status_code=status, content=b'{"error": "down on purpose"}', media_type="application/json")
    return Response(content=f'{{"received": {len(endpoint.received)}}}', media_type="application/json")


@router.put("/{name}/_control")
async def control(name: str, body: Control, request: Request) -> dict:
    endpoint = _state(request).endpoint(name)
    if body.down is not None:
        endpoint.down = body.down
    if body.fail_status is not None:
        endpoint.fail_status = body.fail_status
    return {"down": endpoint.down, "fail_status": endpoint.fail_status}


@router.get("/{name}/received")
async def received(name: str, request: Request) -> dict:
    return {"items": _state(request).endpoint(name).received}
