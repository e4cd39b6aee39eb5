"""An import's uploaded file in the object storage, sealed in segments (`imports/<id>/<n>`, each `segment_bytes` of
plaintext, AES-GCM bound to its import and number): the upload is written segment by segment as it arrives and read
back from any byte offset one segment at a time, so neither end ever holds the whole file (a file may be gigabytes),
and every backend (local directory, S3) serves it with its plain put/get."""

import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from core.crypto import FileCipher
from core.storage import ObjectStorage

SEGMENT_BYTES = 4 * 1024 * 1024


def segment_key(import_id: uuid.UUID, number: int) -> str:
    return f"imports/{import_id}/{number}"


def sealing_context(import_id: uuid.UUID, number: int) -> str:
    """A segment's ciphertext opens only as this import's segment `number`: none can be swapped or reordered."""
    return f"transaction-import:{import_id}:{number}"


@dataclass
class StoredFile:
    size_bytes: int
    segments: int
    segment_bytes: int
    key_id: str


async def store_stream(
    storage: ObjectStorage,
    cipher: FileCipher,
    import_id: uuid.UUID,
    chunks: AsyncIterable[bytes],
    max_bytes: int,
    segment_bytes: int = SEGMENT_BYTES,
) -> StoredFile:
    """Seals and stores what `chunks` yields; ValueError once more than `max_bytes` arrived (and what was stored of
    it deleted)."""
    buffer, number, size, key_id = bytearray(), 0, 0, cipher.current_key_id
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            await delete(storage, import_id, number)
            raise ValueError(f"the file is larger than {max_bytes} bytes")
        buffer += chunk
        while len(buffer) >= segment_bytes:
            key_id, sealed = cipher.encrypt(bytes(buffer[:segment_bytes]), sealing_context(import_id, number))
            await storage.put(segment_key(import_id, number), sealed)
            del buffer[:segment_bytes]
            number += 1
    if buffer or number == 0:
        key_id, sealed = cipher.encrypt(bytes(buffer), sealing_context(import_id, number))
        await storage.put(segment_key(import_id, number), sealed)
        number += 1
    return StoredFile(size_bytes=size, segments=number, segment_bytes=segment_bytes, key_id=key_id)


async def read_from(
    storage: ObjectStorage, cipher: FileCipher, import_id: uuid.UUID, stored: StoredFile, offset: int
) -> AsyncIterator[bytes]:
    """The file's bytes from `offset` on, a segment at a time."""
    number, skip = divmod(offset, stored.segment_bytes)
    while number < stored.segments:
        sealed = await storage.get(segment_key(import_id, number))
        plain = cipher.decrypt(stored.key_id, sealed, sealing_context(import_id, number))
        yield plain[skip:] if skip else plain
        number, skip = number + 1, 0


async def delete(storage: ObjectStorage, import_id: uuid.UUID, segments: int) -> None:
    for number in range(segments):
        await storage.delete(segment_key(import_id, number))
