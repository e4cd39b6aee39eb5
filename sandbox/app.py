"""The sandbox: stand-ins for the external services the back office calls over HTTP.

A separate process (`python -m sandbox`), never imported by the API. One module per service, each
exposing a `router`; add a new service by appending its router to SERVICE_ROUTERS.
"""

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from sandbox import bureau, faults, fx, gateway, identity, linking, odfi, receiver, scanner
from sandbox.settings import SandboxSettings

SERVICE_ROUTERS = [
    linking.router,
    odfi.router,
    bureau.router,
    identity.router,
    scanner.router,
    gateway.router,
    fx.router,
]
UNFAULTED_ROUTERS = [
    faults.control_router,
    odfi.control_router,
    bureau.control_router,
    receiver.router,  # fails on its own control, not the injector's
    gateway.control_router,
    fx.control_router,
    gateway.checkout_router,  # the customer's browser page, not the merchant's API
]  # control and test instrumentation


@asynccontextmanager
async def lifespan(app: FastAPI):
    yield
    await app.state.odfi.aclose()  # pending webhook deliveries die with the process
    await app.state.gateway.aclose()


def create_app(settings: SandboxSettings) -> FastAPI:
    app = FastAPI(
        title="Back-office sandbox",
        description="Stand-in external services for development and tests.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.faults = faults.FaultInjector(settings)
    app.state.linking = linking.LinkingState(settings.client_id, settings.secret)
    app.state.odfi = odfi.OdfiState(settings)
    app.state.bureau = bureau.BureauState(settings)
    app.state.receiver = receiver.ReceiverState()
    app.state.gateway = gateway.GatewayState(settings)
    app.state.fx = fx.FxState(settings)

    # Starlette types every handler for Exception; it calls this one only with an InjectedFault.
    app.add_exception_handler(faults.InjectedFault, faults.injected_fault_handler)  # type: ignore[arg-type]
    for router in UNFAULTED_ROUTERS:
        app.include_router(router)
    for router in SERVICE_ROUTERS:
        # Faults hang off the routers, not a global middleware: /healthz and /_control stay reliable.
        app.include_router(router, dependencies=[Depends(faults.inject_faults)])

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
