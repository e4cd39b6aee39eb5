"""An upload's side effects: the scan of its staged bytes, then either storing them as a document version or
discarding them. The bytes wait at their staging key sealed (AES-256-GCM, bound to the version they will become), so
nothing is ever in storage in the clear, and nothing is a document before its scan passed."""

import logging

from temporalio import activity
from temporalio.exceptions import ApplicationError

from core import audit
from core.config import Settings
from core.crypto import FileCipher
from core.db import Database
from core.documents import sealing_context, staging_key, version_key
from core.scanning import Scanner, scanner_from_settings
from core.storage import ObjectStorage, storage_from_settings
from domain.documents import record_version
from models.documents import DocumentVersion, ScanVerdict, UploadInput

security = logging.getLogger("security")


class DocumentActivities:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        storage: ObjectStorage | None = None,
        scanner: Scanner | None = None,
    ):
        self.db = db
        self.storage = storage or storage_from_settings(settings)
        self.scanner = scanner or scanner_from_settings(settings)
        self.cipher = FileCipher.from_settings(settings)

    @activity.defn
    async def scan_upload(self, upload: UploadInput) -> ScanVerdict:
        try:
            sealed = await self.storage.get(staging_key(upload.upload_id))
        except KeyError:
            raise ApplicationError(
                f"upload {upload.upload_id} is not staged", type="UploadNotStaged", non_retryable=True
            ) from None
        plaintext = self.cipher.decrypt(upload.key_id, sealed, sealing_context(upload.document_id, upload.upload_id))
        verdict = await self.scanner.scan(plaintext)
        if not verdict.clean:
            security.warning(
                "upload_infected",
                extra={
                    "security_event": "upload_infected",
                    "upload_id": str(upload.upload_id),
                    "document_id": str(upload.document_id),
                    "user_id": str(upload.created_by),
                    "signature": verdict.signature,
                },
            )
        return verdict

    @activity.defn
    async def store_upload(self, upload: UploadInput) -> int:
        """The staged ciphertext copied to the version's key, then the version's row written, then the staging copy
        removed. Run again, it finds its version and only removes what is left of the staging copy."""
        staged, key = staging_key(upload.upload_id), version_key(upload.document_id, upload.upload_id)
        async with self.db.session() as session:
            stored = await session.get(DocumentVersion, upload.upload_id)
        if stored is not None:
            await self.storage.delete(staged)
            return stored.number
        # The object first, with no database connection held meanwhile: a row never names a missing object, and
        # a crash in between leaves an object that the retry writes again under the same key.
        await self.storage.put(key, await self.storage.get(staged))
        async with self.db.session() as session, session.begin():
            number = await record_version(session, upload, key)
            await audit.record(
                session,
                actor=f"system:{activity.info().workflow_id}",
                actor_id=upload.created_by,
                action="document.version_stored",
                entity_type="document",
                entity_id=upload.document_id,
                after={"version": number, "sha256": upload.sha256, "size_bytes": upload.size_bytes},
            )
        await self.storage.delete(staged)
        return number

    @activity.defn
    async def discard_upload(self, upload: UploadInput) -> None:
        await self.storage.delete(staging_key(upload.upload_id))
