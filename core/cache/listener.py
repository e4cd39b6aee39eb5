"""The task that keeps a process's cache true: LISTEN on the cache channel, on a connection of its own, and drop what
each notification names. The cache serves entries only while this listens (core/cache/store.py); when the connection
fails it is bypassed, and the listener reconnects every CACHE_LISTENER_RETRY. A probe every PROBE_SECONDS notices a
connection that died without a word (a network cut), so that too ends in a bypass, not in stale entries.

One per process: the API's lifespan (api/main.py) and the worker (worker.py) run it.
"""

import asyncio
import contextlib
import logging

import psycopg

from core.cache import CHANNEL
from core.cache.store import Cache
from core.db import libpq_url

log = logging.getLogger("cache")

PROBE_SECONDS = 10.0


class CacheListener:
    def __init__(self, cache: Cache, database_url: str, service: str, retry: float = 1.0):
        self.cache = cache
        self.url = libpq_url(database_url)
        self.application_name = f"backoffice-cache-{service}"
        self.retry = retry
        self.backend_pid: int | None = None  # the LISTEN connection's server process, while it is up
        self._task: asyncio.Task | None = None
        self._report_failure = True  # once per outage, not once per retry

    async def __aenter__(self) -> "CacheListener":
        if self.cache.enabled:
            self._task = asyncio.create_task(self._run(), name="cache-listener")
        return self

    async def __aexit__(self, *exc) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.cache.set_listening(False)

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except Exception as exc:
                if self._report_failure:
                    log.warning("cache listener down: the cache is bypassed until it reconnects", exc_info=exc)
                self._report_failure = False
            finally:
                self.backend_pid = None
                self.cache.set_listening(False)
            await asyncio.sleep(self.retry)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, application_name=self.application_name, connect_timeout=5
        ) as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            self.backend_pid = conn.info.backend_pid
            self.cache.set_listening(True)  # after LISTEN: a change from now on is heard; the earlier ones are cleared
            self._report_failure = True
            log.info("cache listening", extra={"channel": CHANNEL})
            while True:
                async for notification in conn.notifies(timeout=PROBE_SECONDS):
                    self.cache.apply(notification.payload)
                await asyncio.wait_for(conn.execute("SELECT 1"), timeout=PROBE_SECONDS)
