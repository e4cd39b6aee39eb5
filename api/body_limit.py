"""A ceiling on every request's body, applied as it arrives: an upload to /documents may carry
DOCUMENT_MAX_BYTES and its form fields, anything else REQUEST_MAX_BYTES. A declared Content-Length past the ceiling
is a 413 before one byte of the body is read; a body without one (chunked) is a 413 as soon as it passes the
ceiling. Without this, the multipart parser spools a file of any size to disk before the router's own check sees it.
"""

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body
from core.config import Settings

UPLOAD_PREFIX = "/api/v1/documents"
IMPORT_PREFIX = "/api/v1/transaction-imports"  # a member's CSV: IMPORT_MAX_BYTES
FORM_OVERHEAD = 64 * 1024  # the multipart boundaries and the upload's other fields


class BodyTooLarge(HTTPException):
    """Raised from `receive`: FastAPI lets an HTTPException out of its body parsing as it is (a 413 here)."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than {limit} bytes")
        self.details = {"limit_bytes": limit}  # as the answer to a declared length has them (api/errors.py)


class BodyLimit:
    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.settings = settings

    def limit_for(self, scope: Scope) -> int:
        if scope["method"] in ("POST", "PUT") and scope["path"].startswith(UPLOAD_PREFIX):
            return self.settings.document_max_bytes + FORM_OVERHEAD
        if scope["method"] == "POST" and scope["path"] == IMPORT_PREFIX:
            return self.settings.import_max_bytes + FORM_OVERHEAD
        return self.settings.request_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self.too_large(limit)(scope, receive, send)
            return
        received = 0
        started = refused = False

        async def counting() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    raise BodyTooLarge(limit)
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if refused:  # the rest of the body is never read: this connection carries no other request
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, counting, tracking)
        except BodyTooLarge:  # read outside a route (a middleware): answered here, unless an answer has begun
            if started:
                raise
            await self.too_large(limit)(scope, receive, send)

    @staticmethod
    def too_large(limit: int) -> JSONResponse:
        # The rest of the body is never read: the connection is closed after the answer.
        return JSONResponse(
            error_body("request_too_large", f"the request body is larger than {limit} bytes", {"limit_bytes": limit}),
            413,
            headers={"Connection": "close"},
        )
