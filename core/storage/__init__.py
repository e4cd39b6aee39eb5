"""Object storage behind one interface: put/get/delete/exists of bytes by key. What is stored is already encrypted
(core/crypto.py FileCipher): a backend never sees a plaintext document.

LocalDirectoryStorage (the default, under .data/) and S3Storage (any S3-compatible store: MinIO in docker-compose,
AWS S3 in production); `storage_from_settings` picks one by DOCUMENT_STORAGE."""

import re
from datetime import datetime
from typing import Protocol

from core.config import Settings

# Keys are ours (documents/<uuid>/<uuid>, staging/<uuid>): a narrow alphabet, never a path out of the store.
KEY_PATTERN = re.compile(r"^[a-z0-9-]+(/[a-z0-9-]+)*$")


def checked_key(key: str) -> str:
    if not KEY_PATTERN.fullmatch(key) or len(key) > 300:
        raise ValueError(f"not a storage key: {key!r}")
    return key


class ObjectStorage(Protocol):
    async def put(self, key: str, data: bytes) -> None:
        """Writes the whole object (atomically: a reader sees the old bytes or the new, never half); overwrites."""

    async def get(self, key: str) -> bytes:
        """The object's bytes; KeyError when there is none."""

    async def delete(self, key: str) -> None:
        """Removes the object; nothing when there is none (so a retried delete succeeds)."""

    async def exists(self, key: str) -> bool: ...

    async def keys_older_than(self, prefix: str, before: datetime) -> list[str]:
        """The keys under `prefix` (a folder: `staging/`) last written before `before`."""


def storage_from_settings(settings: Settings) -> ObjectStorage:
    if settings.document_storage == "s3":
        from core.storage.s3 import S3Storage  # boto3 only where it is used

        return S3Storage.from_settings(settings)
    from core.storage.local import LocalDirectoryStorage

    return LocalDirectoryStorage(settings.document_storage_dir)
