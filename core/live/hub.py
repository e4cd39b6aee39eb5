"""This process's WebSockets by user, and the dispatch of one `live_updates` event to those it names. A socket reads
its events from a bounded queue: one that falls too far behind is told to go (its client reconnects and reloads),
so a slow client never holds the others back nor grows the memory without bound."""

import asyncio
import json
import logging
import uuid
from collections import defaultdict

log = logging.getLogger("live")


class Outbox:
    """One socket's pending events (text frames); `overflowed` once it fell `size` behind."""

    def __init__(self, size: int):
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(size + 1)  # + 1: room for the closing sentinel
        self.size = size
        self.overflowed = False

    def put(self, frame: str) -> None:
        if self.overflowed:
            return
        if self.queue.qsize() >= self.size:
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(frame)


class Hub:
    def __init__(self, queue_size: int):
        self.queue_size = queue_size
        self.sockets: dict[uuid.UUID, set[Outbox]] = defaultdict(set)

    def add(self, user_id: uuid.UUID) -> tuple[Outbox, int]:
        """A new socket of the user: its outbox and the user's socket count on this process now."""
        outbox = Outbox(self.queue_size)
        self.sockets[user_id].add(outbox)
        return outbox, len(self.sockets[user_id])

    def remove(self, user_id: uuid.UUID, outbox: Outbox) -> int:
        """The user's socket count on this process once this one is gone."""
        mine = self.sockets.get(user_id)
        if mine is None:
            return 0
        mine.discard(outbox)
        if not mine:
            del self.sockets[user_id]
        return len(mine)

    def counts(self) -> dict[uuid.UUID, int]:
        return {user_id: len(outboxes) for user_id, outboxes in self.sockets.items()}

    def dispatch(self, payload: str) -> int:
        """An event of the channel, `{"user_ids": [...], "type": ..., "data": {...}}`, to the local sockets of its
        users as `{"type", "data"}`. Returns how many sockets got it."""
        try:
            event = json.loads(payload)
            users = {uuid.UUID(str(u)) for u in event["user_ids"]}
            frame = json.dumps({"type": event["type"], "data": event.get("data")})
        except (ValueError, KeyError, TypeError):
            log.warning("live event not understood", extra={"payload": payload[:200]})
            return 0
        delivered = 0
        for user_id in users:
            for outbox in self.sockets.get(user_id, ()):
                outbox.put(frame)
                delivered += 1
        return delivered
