"""Fault injection for the sandbox's service routes: latency, random errors, forced failures.

Applied as a router dependency (see app.py), so /healthz and /_control are never affected and every
service router added later gets it by being included the same way.

Precedence for a request: the `X-Sandbox-Fail: <status>` header, then `fail_next`, then `error_rate`.
Latency is applied first, to failing and succeeding requests alike.
"""

import asyncio
import logging
import random
import threading

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sandbox.settings import SandboxSettings

log = logging.getLogger("sandbox.faults")

FAIL_HEADER = "X-Sandbox-Fail"


class FaultConfig(BaseModel):
    latency_ms: int = Field(0, ge=0)
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    error_status: int = Field(500, ge=400, le=599)
    fail_next: int = Field(0, ge=0, description="the next N service requests fail with error_status")


class FaultConfigUpdate(BaseModel):
    """PUT body: only the fields present are changed."""

    latency_ms: int | None = Field(None, ge=0)
    error_rate: float | None = Field(None, ge=0.0, le=1.0)
    error_status: int | None = Field(None, ge=400, le=599)
    fail_next: int | None = Field(None, ge=0)


class InjectedFault(Exception):
    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message


class FaultInjector:
    """Holds the live fault configuration; one per app."""

    def __init__(self, settings: SandboxSettings):
        self.config = FaultConfig(
            latency_ms=settings.latency_ms, error_rate=settings.error_rate, error_status=settings.error_status
        )
        self._dice = random.Random(settings.seed)
        # Handlers run on the event loop, but a lock keeps fail_next exact even if a sync route is added.
        self._lock = threading.Lock()

    def update(self, change: FaultConfigUpdate) -> FaultConfig:
        with self._lock:
            self.config = self.config.model_copy(update=change.model_dump(exclude_unset=True, exclude_none=True))
            return self.config

    def decide(self, header_value: str | None) -> InjectedFault | None:
        """Whether this request fails; consumes one `fail_next` when that is the reason."""
        if header_value is not None:
            try:
                status = int(header_value)
            except ValueError:
                status = 0
            if not 400 <= status <= 599:
                return InjectedFault(400, f"{FAIL_HEADER} must be an HTTP error status 400-599, got {header_value!r}")
            return InjectedFault(status, f"Injected fault requested by the {FAIL_HEADER} header")
        with self._lock:
            if self.config.fail_next > 0:
                self.config = self.config.model_copy(update={"fail_next": self.config.fail_next - 1})
                return InjectedFault(self.config.error_status, "Injected fault (fail_next)")
            if self.config.error_rate > 0 and self._dice.random() < self.config.error_rate:
                return InjectedFault(self.config.error_status, f"Injected fault (error_rate={self.config.error_rate})")
        return None


async def inject_faults(request: Request) -> None:
    """Router dependency: sleep for the configured latency, then maybe raise an InjectedFault."""
    injector: FaultInjector = request.app.state.faults
    if injector.config.latency_ms:
        await asyncio.sleep(injector.config.latency_ms / 1000)
    fault = injector.decide(request.headers.get(FAIL_HEADER))
    if fault is not None:
        log.info("injecting fault status=%s path=%s reason=%s", fault.status, request.url.path, fault.message)
        raise fault


async def injected_fault_handler(_request: Request, exc: InjectedFault) -> JSONResponse:
    return JSONResponse({"error_code": "INJECTED_FAULT", "error_message": exc.message}, status_code=exc.status)


control_router = APIRouter(prefix="/_control", tags=["control"])


@control_router.get("/faults", response_model=FaultConfig)
async def get_faults(request: Request) -> FaultConfig:
    return request.app.state.faults.config


@control_router.put("/faults", response_model=FaultConfig)
async def put_faults(change: FaultConfigUpdate, request: Request) -> FaultConfig:
    config = request.app.state.faults.update(change)
    log.info("fault config changed: %s", config.model_dump())
    return config
