"""Objects as files under one directory (the default backend): written to a temporary file, flushed to disk, then
renamed over the key's file, so a crash never leaves half an object under a key."""

import asyncio
import os
import uuid
from datetime import datetime
from pathlib import Path

from core.storage import checked_key


class LocalDirectoryStorage:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / checked_key(key)

    def _put(self, key: str, data: bytes) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        with open(temporary, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)

    def _get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get, key)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).is_file)

    async def keys_older_than(self, prefix: str, before: datetime) -> list[str]:
        def scan() -> list[str]:
            folder = self.root / checked_key(prefix.rstrip("/"))
            if not folder.is_dir():
                return []
            limit = before.timestamp()
            return [
                path.relative_to(self.root).as_posix()
                for path in folder.rglob("*")
                # a writer's temporary file (.name.tmp) is its own: renamed or gone before long
                if path.is_file() and not path.name.startswith(".") and path.stat().st_mtime < limit
            ]

        return await asyncio.to_thread(scan)
