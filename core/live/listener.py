"""One per API process (started in api/main.py's lifespan): LISTEN on `live_updates` on a connection of its own and
hand each event to the hub; and every live_heartbeat refresh this process's presence rows and sweep dead processes'.
A lost connection is retried every second; events sent meanwhile are lost to this process (a client that needs all
of them reloads on reconnect, as after any network cut)."""

import asyncio
import contextlib
import logging
import os
import socket
import uuid

import psycopg

from core.config import Settings
from core.db import Database, libpq_url
from core.live import CHANNEL
from core.live.hub import Hub, Outbox
from domain import presence

log = logging.getLogger("live")

RETRY_SECONDS = 1.0
PROBE_SECONDS = 10.0


class LiveUpdates:
    def __init__(self, settings: Settings, db: Database):
        self.settings = settings
        self.db = db
        self.url = libpq_url(settings.database_url)
        # Unique per app instance (two apps in one OS process, as the tests run them, are two processes here).
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.hub = Hub(settings.live_queue_size)
        self.expiry = settings.live_session_expiry
        self.listening = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}

    async def __aenter__(self) -> "LiveUpdates":
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="live-listener"),
            asyncio.create_task(self._heartbeat_forever(), name="live-heartbeat"),
        ]
        return self

    async def __aexit__(self, *exc) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):  # at worst the rows expire and another process sweeps them
            await presence.forget_process(self.db, self.process_id, self.expiry)

    async def connected(self, user_id: uuid.UUID) -> Outbox:
        outbox, _ = self.hub.add(user_id)
        try:
            await self._sync(user_id)
        except BaseException:
            self.hub.remove(user_id, outbox)
            raise
        return outbox

    async def disconnected(self, user_id: uuid.UUID, outbox: Outbox) -> None:
        self.hub.remove(user_id, outbox)
        await self._sync(user_id)

    async def _sync(self, user_id: uuid.UUID) -> None:
        """The user's presence row takes this process's count as it is when written: one write at a time per user,
        so an older count never lands after a newer one."""
        lock = self._locks.setdefault(user_id, asyncio.Lock())
        async with lock:
            count = len(self.hub.sockets.get(user_id, ()))
            await presence.set_sockets(self.db, self.process_id, user_id, count, self.expiry)
        if not lock.locked() and not self.hub.sockets.get(user_id):
            self._locks.pop(user_id, None)

    async def _listen_forever(self) -> None:
        report = True
        while True:
            try:
                await self._listen()
            except Exception as exc:
                if report:
                    log.warning("live updates listener down: reconnecting", exc_info=exc)
                report = False
            finally:
                self.listening.clear()
            await asyncio.sleep(RETRY_SECONDS)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, application_name="backoffice-live", connect_timeout=5
        ) as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            self.listening.set()
            while True:
                async for notification in conn.notifies(timeout=PROBE_SECONDS):
                    self.hub.dispatch(notification.payload)
                await asyncio.wait_for(conn.execute("SELECT 1"), timeout=PROBE_SECONDS)

    async def _heartbeat_forever(self) -> None:
        interval = self.settings.live_heartbeat.total_seconds()
        while True:
            await asyncio.sleep(interval)
            try:
                await presence.heartbeat(self.db, self.process_id, self.hub.counts(), self.expiry)
                await presence.sweep(self.db, self.expiry)
            except Exception as exc:
                log.warning("live presence heartbeat failed", exc_info=exc)
