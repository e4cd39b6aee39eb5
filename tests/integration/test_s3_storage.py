"""S3Storage against an S3 server on loopback (moto's standalone server, a separate process speaking the S3 HTTP API:
MinIO stands in for it in docker-compose, AWS S3 in production): the same contract as the local directory."""

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from core.config import Settings
from core.crypto import FileCipher
from core.documents import sealing_context
from core.storage import storage_from_settings
from core.storage.s3 import S3Storage
from devstack import processes


@pytest.fixture(scope="module")
def s3_url(tmp_path_factory) -> Iterator[str]:
    port = processes.free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    child = processes.start(processes.python("-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)), log_path=log)
    processes.wait_for_port(port, child, name="moto S3 server")
    yield f"http://127.0.0.1:{port}"
    processes.stop(child)


async def test_s3_storage_keeps_sealed_objects(s3_url):
    settings = Settings(
        document_storage="s3",
        s3_endpoint_url=s3_url,
        s3_bucket="documents-test",
        s3_access_key_id="test",
        s3_secret_access_key="test-secret",
    )
    storage = storage_from_settings(settings)
    assert isinstance(storage, S3Storage)
    await asyncio.to_thread(storage.client.create_bucket, Bucket="documents-test")
    cipher = FileCipher.from_settings(settings)
    context = sealing_context(uuid.uuid4(), uuid.uuid4())
    key_id, sealed = cipher.encrypt(b"%PDF-1.7 a member's passport", context)

    await storage.put("documents/d1/v1", sealed)
    assert await storage.exists("documents/d1/v1")
    assert cipher.decrypt(key_id, await storage.get("documents/d1/v1"), context) == b"%PDF-1.7 a member's passport"
    await storage.put("documents/d1/v1", b"replaced whole")
    assert await storage.get("documents/d1/v1") == b"replaced whole"
    await storage.delete("documents/d1/v1")
    await storage.delete("documents/d1/v1")  # a retried delete succeeds
    assert not await storage.exists("documents/d1/v1")
    with pytest.raises(KeyError):
        await storage.get("documents/d1/v1")
    with pytest.raises(ValueError):
        await storage.put("../escape", b"x")

    # What the retention run sweeps: keys under a folder written before a time (S3's LastModified).
    await storage.put("staging/u1", b"sealed")
    await storage.put("documents/d2/v1", b"kept")
    now = datetime.now(UTC)
    assert await storage.keys_older_than("staging/", now + timedelta(minutes=1)) == ["staging/u1"]
    assert await storage.keys_older_than("staging/", now - timedelta(hours=1)) == []
