"""Every 4xx (and the rare 5xx) answers `{"error": {"code", "message", "details"}}`."""

import logging
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.access import AccessDenied, NotVisible
from core.ledger import PostingToClosedAccount

log = logging.getLogger("api.errors")


class AppError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details, self.headers = status, code, message, details, headers


def not_found(entity: str, entity_id: Any) -> AppError:
    return AppError(404, "not_found", f"{entity} {entity_id} not found", {"entity": entity, "id": str(entity_id)})


def forbidden(message: str = "you are not allowed to do this") -> AppError:
    return AppError(403, "forbidden", message)


def error_body(code: str, message: str, details: Any = None) -> dict:
    # Money stays exact in error details too: Decimal as a string, never a float.
    return {"error": {"code": code, "message": message, "details": jsonable_encoder(details, custom_encoder={Decimal: str})}}


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 415: "unsupported_media_type", 422: "unprocessable"}


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
        details = [{"loc": list(e.get("loc", ())), "message": e.get("msg"), "type": e.get("type")} for e in exc.errors()]
        return JSONResponse(error_body("validation_error", "the request is not valid", details), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(PostingToClosedAccount)
    async def posting_to_closed_account(_: Request, exc: PostingToClosedAccount) -> JSONResponse:
        # The account was closed between a handler's check and its posting.
        return JSONResponse(error_body("account_closed", "the account is closed", str(exc)), 409)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(error_body("internal_error", "an unexpected error occurred"), 500)
