"""Documents as the router and the activities share them: who owns an upload, and recording a stored version."""

import hashlib
import uuid

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from core import access
from core.access import Entity
from core.crypto import FileCipher
from core.documents import sealing_context, version_key
from core.storage import ObjectStorage
from models.documents import DEFAULT_SENSITIVITY, Document, DocumentKind, DocumentVersion, OwnerType, UploadInput
from models.loans import Loan
from models.users import User


class NoOrganization(ValueError):
    """The owner belongs to no organization (a bank-wide user): a document has nowhere to belong."""


async def owner_org(session: AsyncSession, user: User, entity_type: OwnerType, entity_id: uuid.UUID) -> uuid.UUID:
    """The organization of the entity a document is for, when `user` may see the entity (a 404 otherwise)."""
    if entity_type == OwnerType.loan:
        loan: Loan = await access.visible(session, user, Entity.loan, entity_id)
        return loan.org_id
    person = access.check_acts_for(user, await session.get(User, entity_id), entity_id)
    if person.org_id is None:
        raise NoOrganization(f"user {entity_id} belongs to no organization")
    return person.org_id


async def record_version(session: AsyncSession, upload: UploadInput, storage_key: str) -> int:
    """Inserts the version (and its document, when new) in the caller's transaction; returns the version's number.
    Run again for the same upload, it returns the number already given (the version's id is the upload's)."""
    existing = await session.get(DocumentVersion, upload.upload_id)
    if existing is not None:
        return existing.number
    if upload.new_document:
        await session.execute(
            insert(Document)
            .values(
                id=upload.document_id,
                org_id=upload.org_id,
                entity_type=upload.entity_type,
                entity_id=upload.entity_id,
                kind=upload.kind,
                sensitivity=upload.sensitivity,
                title=upload.title,
                latest_version=0,
                created_by=upload.created_by,
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
    # The document's row lock numbers its versions one after the other, whatever uploads race.
    number = (
        await session.execute(
            text("UPDATE documents SET latest_version = latest_version + 1 WHERE id = :id RETURNING latest_version"),
            {"id": upload.document_id},
        )
    ).scalar_one()
    session.add(
        DocumentVersion(
            id=upload.upload_id,
            document_id=upload.document_id,
            number=number,
            storage_key=storage_key,
            size_bytes=upload.size_bytes,
            sha256=upload.sha256,
            content_type=upload.content_type,
            filename=upload.filename,
            key_id=upload.key_id,
            created_by=upload.created_by,
        )
    )
    return number


async def store_generated(
    session: AsyncSession,
    storage: ObjectStorage,
    cipher: FileCipher,
    *,
    document_id: uuid.UUID,
    version_id: uuid.UUID,
    org_id: uuid.UUID,
    owner: tuple[OwnerType, uuid.UUID],
    kind: DocumentKind,
    title: str,
    filename: str,
    content_type: str,
    content: bytes,
) -> int:
    """A document we produced ourselves (a loan agreement), stored in the caller's transaction as an upload is,
    without a scan. Idempotent by `version_id`: once its row exists nothing is written again (not even the object,
    which a key rotation since would seal under another key than its row names)."""
    if (stored := await session.get(DocumentVersion, version_id)) is not None:
        return stored.number
    key_id, sealed = cipher.encrypt(content, sealing_context(document_id, version_id))
    key = version_key(document_id, version_id)
    await storage.put(key, sealed)
    upload = UploadInput(
        upload_id=version_id,
        document_id=document_id,
        new_document=True,
        org_id=org_id,
        entity_type=owner[0],
        entity_id=owner[1],
        kind=kind,
        sensitivity=DEFAULT_SENSITIVITY[kind],
        title=title,
        filename=filename,
        content_type=content_type,
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        key_id=key_id,
        created_by=None,
    )
    return await record_version(session, upload, key)


async def not_of_member(session: AsyncSession, member_id: uuid.UUID, document_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Those of `document_ids` that are not documents of the member (unknown, or another's: the caller says which
    neither way, so an id tells nothing of what lies outside the member's own)."""
    if not document_ids:
        return []
    found = (
        await session.execute(
            select(col(Document.id)).where(
                col(Document.entity_type) == OwnerType.user,
                col(Document.entity_id) == member_id,
                col(Document.id).in_(document_ids),
            )
        )
    ).scalars()
    theirs = set(found)
    return [document_id for document_id in dict.fromkeys(document_ids) if document_id not in theirs]
