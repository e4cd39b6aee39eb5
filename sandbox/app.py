"""The sandbox: stand-ins for the external services the back office calls over HTTP.

A separate process (`python -m sandbox`), never imported by the API. One module per service, each
exposing a `router`; add a new service by appending its router to SERVICE_ROUTERS.
"""

from fastapi import Depends, FastAPI

from sandbox import faults, linking
from sandbox.settings import SandboxSettings

SERVICE_ROUTERS = [linking.router]


def create_app(settings: SandboxSettings) -> FastAPI:
    app = FastAPI(title="Back-office sandbox", description="Stand-in external services for development and tests.")
    app.state.settings = settings
    app.state.faults = faults.FaultInjector(settings)
    app.state.linking = linking.LinkingState(settings.client_id, settings.secret)

    app.add_exception_handler(faults.InjectedFault, faults.injected_fault_handler)
    app.include_router(faults.control_router)
    for router in SERVICE_ROUTERS:
        # Faults hang off the routers, not a global middleware: /healthz and /_control stay reliable.
        app.include_router(router, dependencies=[Depends(faults.inject_faults)])

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
