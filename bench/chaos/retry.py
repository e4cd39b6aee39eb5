"""HTTP calls of the chaos driver: a client retries what an outage answers (no connection, a 5xx while Postgres or
Temporal restarts), always with the same Idempotency-Key, so a retry is the same request."""

import asyncio
import time
from typing import Any

import httpx

RETRY_FOR = 600.0  # seconds: longer than any outage the run causes, and than the slow time after one


async def call(http: httpx.AsyncClient, method: str, url: str, **kwargs) -> httpx.Response:
    """The first answer that is not an outage (a 2xx or a 4xx); raises after RETRY_FOR seconds of outages."""
    deadline = time.monotonic() + RETRY_FOR
    delay = 0.2
    while True:
        try:
            response = await http.request(method, url, **kwargs)
            if response.status_code < 500:
                return response
            outcome = f"{response.status_code} {response.text[:200]}"
        except httpx.TransportError as error:
            outcome = f"{type(error).__name__}: {error}"
        if time.monotonic() > deadline:
            raise RuntimeError(f"{method} {url}: still failing after {RETRY_FOR:.0f} s: {outcome}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 3.0)


async def ok(http: httpx.AsyncClient, method: str, url: str, **kwargs) -> Any:
    """call() that must end in a 2xx: its JSON body."""
    response = await call(http, method, url, **kwargs)
    if not response.is_success:
        raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:500]}")
    return response.json()
