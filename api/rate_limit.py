"""The rate-limit middleware (core/rate_limit.py): each request takes a token from its group's bucket for its
identity before anything else runs; a refusal is a 429 with Retry-After, the RateLimit-* headers and the error body,
logged as a security event. Every limited answer carries the RateLimit-* headers.

If the bucket statement fails (the database is down), the request goes on unlimited and the failure is logged: the
request would fail on the database anyway, and a limiter must not turn an outage into refusals of its own."""

import logging

import jwt
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body
from core import api_keys
from core.config import Settings
from core.rate_limit import Identity, RateLimiter, group_of
from core.security import decode_token

security = logging.getLogger("security")
log = logging.getLogger("api.rate_limit")


def identify(headers: Headers, client: tuple[str, int] | None, settings: Settings) -> Identity:
    """The identity a request counts against: no database read here (an API key is checked by the bucket statement
    itself, so a made-up key counts against its sender's address)."""
    address = f"ip:{client[0] if client else 'unknown'}"
    authorization = headers.get("authorization", "")
    token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
    # As api/deps.py reads them: a bearer token wins; X-API-Key only without one.
    presented = (token if api_keys.looks_like_key(token) else "") if token else headers.get("x-api-key", "")
    if presented:
        parsed = api_keys.parse(presented)
        if parsed is None:
            return Identity(address, "anonymous")
        prefix, secret = parsed
        return Identity(address, "anonymous", prefix, api_keys.hash_secret(secret))
    if token:
        try:
            claims = decode_token(settings, token, "access")
            return Identity(f"user:{claims['sub']}", str(claims.get("role") or "anonymous"))
        except jwt.InvalidTokenError:
            pass
    return Identity(address, "anonymous")


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        settings: Settings = state.settings
        limiter: RateLimiter | None = getattr(state, "rate_limiter", None)
        group = group_of(scope["path"], scope["method"])
        if limiter is None or group is None or not settings.rate_limits_enabled:
            await self.app(scope, receive, send)
            return
        who = identify(Headers(scope=scope), scope.get("client"), settings)
        try:
            decision = await limiter.take(group, who)
        except Exception:
            log.exception("rate limit check failed: request let through")
            await self.app(scope, receive, send)
            return
        headers = decision.headers()
        if not decision.allowed:
            security.warning(
                "rate_limited",
                extra={
                    "security_event": "rate_limited",
                    "group": group,
                    "identity": f"key:{who.key_prefix}" if who.key_prefix else who.bucket,
                    "method": scope["method"],
                    "path": scope["path"],
                    "retry_after": decision.retry_after,
                },
            )
            body = error_body(
                "rate_limited",
                f"too many requests: try again in {decision.retry_after} s",
                {"group": group, "limit": decision.limit, "retry_after": decision.retry_after},
            )
            await JSONResponse(body, 429, headers=headers)(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                for name, value in headers.items():
                    response_headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)
