"""Waiting in tests for something the workflows do in the background, without timed assertions."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def poll(
    fetch: Callable[[], Awaitable[Any]],
    done: Callable[[Any], object],
    timeout: float,
    what: str | Callable[[Any], str],
    interval: float = 0.2,
) -> Any:
    """`await fetch()` until `done(value)`; that value, or an AssertionError naming `what` and the last value.
    `what` may be a function of the last value, for a message that shows it."""
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(what(value) if callable(what) else f"{what}: {value}")
        await asyncio.sleep(interval)
