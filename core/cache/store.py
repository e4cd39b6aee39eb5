"""An in-process cache with a TTL, of immutable values by (name, key): a name is a cached table, a key a row's id,
or None for a list that depends on every row of the table.

Entries are served only while the process listens for changes (`set_listening`, from core/cache/listener.py): before
the listener is up, while it reconnects, or with CACHE_TTL_SECONDS=0, every read goes to the database ("bypass").
A value loaded while its name was invalidated is returned but not kept: it may predate the change.
"""

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from core.config import Settings

V = TypeVar("V")


class Result(StrEnum):
    hit = "hit"  # served from the cache
    miss = "miss"  # not there or expired: read from the database and kept
    bypass = "bypass"  # the cache is off or not listening: read from the database, not kept


class CacheObserver(Protocol):
    def counted(self, name: str, result: Result) -> None: ...

    def listening(self, listening: bool) -> None: ...


class Cache:
    def __init__(self, ttl_seconds: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[tuple[str, Hashable], tuple[float, Any]] = {}  # oldest first: the first to go when full
        # Moves on every invalidation of a name (and of all, on clear): a load that saw it move is not kept.
        self._generations: Counter[str] = Counter()
        self._epoch = 0
        self.listening = False
        self.counts: Counter[tuple[str, Result]] = Counter()
        # Told of every read's result and every change of `listening`: the metrics of a multiprocess API
        # (core/cache/metrics.py), which a scrape of one process must sum over all of them.
        self.observers: list[CacheObserver] = []

    @classmethod
    def from_settings(cls, settings: Settings) -> "Cache":
        return cls(settings.cache_ttl_seconds, settings.cache_max_entries)

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    async def get(self, name: str, key: Hashable, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """The cached value of (name, key), else `load()`'s (kept unless it is None or raced an invalidation)."""
        if not (self.enabled and self.listening):
            self._count(name, Result.bypass)
            return await load()
        entry = self._entries.get((name, key))
        if entry is not None and entry[0] > self._clock():
            self._count(name, Result.hit)
            value: V = entry[1]
            return value
        self._count(name, Result.miss)
        before = self._version(name)
        loaded = await load()
        if loaded is not None and self.listening and self._version(name) == before:
            self._keep((name, key), loaded)
        return loaded

    def invalidate(self, name: str, key: Hashable | None = None) -> None:
        """Drops the entry `key` of `name` and the name's lists (key None); with no key, every entry of `name`."""
        self._generations[name] += 1
        if key is None:
            for stale in [k for k in self._entries if k[0] == name]:
                del self._entries[stale]
        else:
            self._entries.pop((name, key), None)
            self._entries.pop((name, None), None)

    def apply(self, payload: str) -> None:
        """A notification of the triggers: "<table>:<id>" (a row changed) or "<table>" (TRUNCATE)."""
        name, _, key = payload.partition(":")
        self.invalidate(name, key or None)

    def set_listening(self, listening: bool) -> None:
        """Up or down, nothing kept before is trusted: changes may have gone unheard."""
        self._epoch += 1
        self._entries.clear()
        self.listening = listening
        for observer in self.observers:
            observer.listening(listening)

    def _count(self, name: str, result: Result) -> None:
        self.counts[name, result] += 1
        for observer in self.observers:
            observer.counted(name, result)

    def _version(self, name: str) -> tuple[int, int]:
        return self._epoch, self._generations[name]

    def _keep(self, key: tuple[str, Hashable], value: Any) -> None:
        now = self._clock()
        self._entries.pop(key, None)
        if len(self._entries) >= self.max_entries:
            for expired in [k for k, (until, _) in self._entries.items() if until <= now]:
                del self._entries[expired]
            while len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
        self._entries[key] = (now + self.ttl, value)

    def __len__(self) -> int:
        return len(self._entries)
