"""Every 4xx (and the rare 5xx) answers `{"error": {"code", "message", "details"}}`, and the OpenAPI says so."""

import logging
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from core.access import AccessDenied, NotVisible
from core.ledger import PostingInClosedPeriod, PostingToClosedAccount

log = logging.getLogger("api.errors")


class AppError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details, self.headers = status, code, message, details, headers


def not_found(entity: str, entity_id: Any) -> AppError:
    return AppError(404, "not_found", f"{entity} {entity_id} not found", {"entity": entity, "id": str(entity_id)})


def error_body(code: str, message: str, details: Any = None) -> dict:
    # Money stays exact in error details too: Decimal as a string, never a float.
    return {
        "error": {"code": code, "message": message, "details": jsonable_encoder(details, custom_encoder={Decimal: str})}
    }


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(_: Request, exc: AppError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.details), exc.status, headers=exc.headers)

    @app.exception_handler(AccessDenied)
    async def access_denied(_: Request, exc: AccessDenied) -> JSONResponse:
        # A row the caller may not read answers exactly as one that does not exist (core/access.py).
        if isinstance(exc, NotVisible):
            missing = not_found(str(exc.entity), exc.entity_id)
            return JSONResponse(error_body(missing.code, missing.message, missing.details), 404)
        return JSONResponse(error_body(exc.code, exc.message), exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "message": e.get("msg"), "type": e.get("type")} for e in exc.errors()
        ]
        return JSONResponse(error_body("validation_error", "the request is not valid", details), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        details = getattr(exc, "details", None)  # api/body_limit.py BodyTooLarge
        return JSONResponse(
            error_body(code, str(exc.detail), details), exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(PostingToClosedAccount)
    async def posting_to_closed_account(_: Request, exc: PostingToClosedAccount) -> JSONResponse:
        # The account was closed between a handler's check and its posting.
        return JSONResponse(error_body("account_closed", "the account is closed", str(exc)), 409)

    @app.exception_handler(PostingInClosedPeriod)
    async def posting_in_closed_period(_: Request, exc: PostingInClosedPeriod) -> JSONResponse:
        # The database refused an entry dated inside a closed accounting period: post it in an open one.
        return JSONResponse(error_body("period_closed", "the accounting period of this date is closed", str(exc)), 409)

    @app.exception_handler(WorkflowUpdateRPCTimeoutOrCancelledError)
    async def update_not_answered(_: Request, exc: WorkflowUpdateRPCTimeoutOrCancelledError) -> JSONResponse:
        # The workflow did not take the update in time (no worker polling, or a worker stuck): nothing was decided.
        return JSONResponse(
            error_body(
                "workflow_busy", "the workflow did not answer in time; nothing was changed, try again", str(exc)
            ),
            503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(RPCError)
    async def temporal_error(_: Request, exc: RPCError) -> JSONResponse:
        # Temporal itself unreachable or overloaded is a 503 to retry; any other RPC error a router did not expect
        # is a bug, answered as one.
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED):
            return JSONResponse(
                error_body("temporal_unavailable", "the workflow service is not reachable; try again", exc.message),
                503,
                headers={"Retry-After": "5"},
            )
        log.error("unexpected Temporal error", exc_info=exc)
        return JSONResponse(error_body("internal_error", "an unexpected error occurred"), 500)

    app.add_middleware(UnexpectedErrors)
    document_errors(app)


class UnexpectedErrors:
    """Answers an unexpected exception with a 500 error body and keeps the connection open.

    Not an `exception_handler(Exception)`: Starlette's ServerErrorMiddleware answers with that handler and then
    re-raises, and uvicorn closes the connection of an app that raised (without `Connection: close`), so the
    client's next request on the same keep-alive connection failed too. Here nothing is re-raised once a whole
    answer can be sent; only when half a response is already out is the connection given up."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception:
            log.exception("unhandled error")
            if started:
                raise
            await JSONResponse(error_body("internal_error", "an unexpected error occurred"), 500)(scope, receive, send)


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"required": ["code", "message", "details"]})
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """Every error: a stable `code` to branch on, a `message` for people, `details` naming what was wrong."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"required": ["error"]})
    error: ErrorDetail


_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def document_errors(app: FastAPI) -> None:
    """The OpenAPI of `app` with the error body declared: every documented 4xx/5xx answer (FastAPI's own 422
    included, which it would describe as `{"detail": [...]}`) and, for the others, `4XX` and `5XX`."""

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.pop("HTTPValidationError", None), components.pop("ValidationError", None)
        components.update(ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}").pop("$defs", {}))
        components["ErrorBody"] = {
            k: v
            for k, v in ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}").items()
            if k != "$defs"
        }
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status, response in responses.items():
                    if status[0] in "45":
                        response["content"] = {"application/json": {"schema": _ERROR_REF}}
                for status, description in (
                    ("4XX", "a client error: nothing was written"),
                    ("5XX", "a server error, or a service we depend on unavailable"),
                ):
                    responses.setdefault(
                        status, {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}
                    )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema
