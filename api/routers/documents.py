"""Documents: upload (multipart; type by content, size limit, scanned before it is stored), versions, and downloads by
signed links that expire. Every download of a sensitive document is audited.

Who: a member their own documents (of themself, of their loans); org staff their organization's (admins and
operators upload, approvers read); a superuser all (core/access.py)."""

import hashlib
import logging
import math
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Path, Query, Request, UploadFile
from fastapi.responses import Response as RawResponse
from pydantic import BaseModel, Field
from sqlmodel import col, select
from temporalio.client import WorkflowFailureError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.deps import CurrentUser, FileCipherDep, ReadSessionDep, SessionDep, SettingsDep, TemporalDep
from api.errors import AppError, not_found
from api.fields import KEY_PATTERN, line_rules
from api.pagination import Page, PageDep, paginate
from core import access, audit, search_attributes
from core.access import Action, Entity
from core.config import Settings
from core.documents import SIGNATURES, LinkRefused, check_link, link_signature, sealing_context, sniff, staging_key
from core.storage import ObjectStorage
from core.task_queues import queue_for
from domain.documents import NoOrganization, owner_org
from models.documents import (
    DEFAULT_SENSITIVITY,
    Document,
    DocumentKind,
    DocumentVersion,
    OwnerType,
    Sensitivity,
    UploadInput,
    UploadResult,
)
from models.users import User
from workflows.document_upload import DocumentUploadWorkflow

log = logging.getLogger(__name__)
router = APIRouter(prefix="/documents", tags=["documents"])

_UPLOAD_NS = uuid.UUID("0f1d7a52-3c1b-4f47-a6a4-2f3d1f0c9e11")
ACCEPTED = sorted({content_type for _, content_type in SIGNATURES})

UploadedFile = Annotated[
    UploadFile,
    File(description="the file: PDF, PNG or JPEG (checked by content)", json_schema_extra={"format": "binary"}),
]
Title = Annotated[str, *line_rules(200, 1, strip=True)]
OptionalKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=KEY_PATTERN,
        description="optional: the same key and the same file again give the version already stored",
    ),
]


class VersionOut(BaseModel):
    number: int
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    created_by: uuid.UUID | None
    created_at: datetime


class DocumentOut(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    entity_type: OwnerType
    entity_id: uuid.UUID
    kind: DocumentKind
    sensitivity: Sensitivity
    title: str
    latest_version: int
    created_by: uuid.UUID | None
    created_at: datetime
    versions: list[VersionOut] | None = Field(default=None, description="on a single document, every version")


class LinkOut(BaseModel):
    url: str = Field(description="GET it (no Authorization needed: the signature is the credential) before expires_at")
    expires_at: datetime


def version_out(row: DocumentVersion) -> VersionOut:
    return VersionOut.model_validate(row, from_attributes=True)


async def document_out(session, document: Document, with_versions: bool = True) -> DocumentOut:
    out = DocumentOut.model_validate(document, from_attributes=True)
    if with_versions:
        rows = await session.exec(
            select(DocumentVersion)
            .where(DocumentVersion.document_id == document.id)
            .order_by(col(DocumentVersion.number))
        )
        out.versions = [version_out(r) for r in rows]
    return out


def storage_of(request: Request) -> ObjectStorage:
    return request.app.state.document_storage


def clean_filename(name: str | None) -> str:
    """The client's file name, without any path and with only harmless characters (it is shown, never trusted)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._ -]", "_", base).strip()[:200] or "upload"


async def read_checked(file: UploadFile, settings: Settings) -> tuple[bytes, str]:
    """The file's bytes and its type by content: 413 past DOCUMENT_MAX_BYTES, 422 empty, 415 neither PDF, PNG nor
    JPEG (whatever its name or declared type says)."""
    data = await file.read(settings.document_max_bytes + 1)
    if len(data) > settings.document_max_bytes:
        raise AppError(
            413,
            "file_too_large",
            f"the file is larger than {settings.document_max_bytes} bytes",
            {"max_bytes": settings.document_max_bytes},
        )
    if not data:
        raise AppError(422, "empty_file", "the file is empty")
    content_type = sniff(data)
    if content_type is None:
        raise AppError(
            415,
            "unsupported_media_type",
            "only PDF, PNG and JPEG files are accepted (the type is read from the content, not the name)",
            {"accepted": ACCEPTED, "filename": clean_filename(file.filename)},
        )
    return data, content_type


async def upload(
    request: Request, client, settings: Settings, cipher, user: User, document: UploadInput, data: bytes
) -> UploadResult:
    """Stages the sealed bytes and waits for DocumentUploadWorkflow: scanned, then stored or discarded."""
    storage = storage_of(request)
    key_id, sealed = cipher.encrypt(data, sealing_context(document.document_id, document.upload_id))
    document.key_id = key_id
    staged = staging_key(document.upload_id)
    await storage.put(staged, sealed)
    workflow_id = f"document-upload-{document.upload_id}"
    try:
        try:
            handle = await client.start_workflow(
                DocumentUploadWorkflow.run,
                document,
                id=workflow_id,
                task_queue=queue_for(settings, DocumentUploadWorkflow),
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,  # the same upload in flight: joined
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(search_attributes.ORG_ID, str(document.org_id))]
                ),
                static_summary=f"Upload of {document.filename} ({document.kind}) by {user.email}",
            )
        except WorkflowAlreadyStartedError:  # the same upload, finished: its result
            handle = client.get_workflow_handle_for(DocumentUploadWorkflow.run, workflow_id)
        return await handle.result()
    except WorkflowFailureError as failure:
        raise AppError(
            503,
            "scan_unavailable",
            "the file could not be scanned for viruses: nothing was stored, try again",
            {"upload_id": str(document.upload_id)},
            headers={"Retry-After": "30"},
        ) from failure
    finally:
        await storage.delete(staged)  # whatever the workflow left (it removes its own copy)


def refused_if_infected(result: UploadResult) -> None:
    if not result.stored:
        raise AppError(
            422,
            "malware_detected",
            "the virus scanner refused the file: nothing was stored",
            {"signature": result.signature},
        )


def upload_id(user: User, key: str | None, target: str, data: bytes) -> uuid.UUID:
    """A fresh id, or with an Idempotency-Key one derived from it, the target and the content: a retry of the same
    file is the same upload; another file under a reused key is another upload."""
    if key is None:
        return uuid.uuid4()
    return uuid.uuid5(_UPLOAD_NS, f"{user.id}:{target}:{key}:{hashlib.sha256(data).hexdigest()}")


@router.post(
    "",
    response_model=DocumentOut,
    status_code=201,
    summary="Upload a new document (multipart): PDF, PNG or JPEG, scanned before it is stored",
    responses={
        413: {"description": "larger than DOCUMENT_MAX_BYTES"},
        415: {"description": "not a PDF, PNG or JPEG by its content"},
        422: {"description": "a bad field, an empty file, or malware found (code malware_detected)"},
        503: {"description": "the scanner could not be reached: nothing stored"},
    },
)
async def create_document(
    request: Request,
    file: UploadedFile,
    entity_type: Annotated[OwnerType, Form(description="what the document is of")],
    entity_id: Annotated[uuid.UUID, Form(description="the user or loan")],
    kind: Annotated[DocumentKind, Form()],
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
    cipher: FileCipherDep,
    user: CurrentUser,
    title: Annotated[Title | None, Form(description="by default the file's name")] = None,
    sensitivity: Annotated[Sensitivity | None, Form(description="by default from the kind")] = None,
    key: OptionalKey = None,
):
    access.gate(user, Entity.document, Action.create)
    try:
        org_id = await owner_org(session, user, entity_type, entity_id)
    except NoOrganization as exc:
        raise AppError(422, "no_organization", "documents belong to members of an organization", str(exc)) from exc
    access.check_upload_document(user, None, org_id, kind)
    data, content_type = await read_checked(file, settings)
    upload_key = upload_id(user, key, f"{entity_type}:{entity_id}:{kind}", data)
    if (done := await session.get(DocumentVersion, upload_key)) is not None:  # the same upload again
        return await document_out(session, await access.visible(session, user, Entity.document, done.document_id))
    filename = clean_filename(file.filename)
    await session.commit()  # no pooled connection held while the file is scanned
    result = await upload(
        request,
        client,
        settings,
        cipher,
        user,
        UploadInput(
            upload_id=upload_key,
            document_id=upload_key,
            new_document=True,
            org_id=org_id,
            entity_type=entity_type,
            entity_id=entity_id,
            kind=kind,
            sensitivity=sensitivity or DEFAULT_SENSITIVITY[kind],
            title=title or filename,
            filename=filename,
            content_type=content_type,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            key_id="",
            created_by=user.id,
        ),
        data,
    )
    refused_if_infected(result)
    return await document_out(session, await access.visible(session, user, Entity.document, result.document_id))


@router.get("", response_model=Page[DocumentOut], summary="Documents the caller may see, newest first")
async def list_documents(
    session: ReadSessionDep,
    user: CurrentUser,
    page: PageDep,
    entity_type: OwnerType | None = None,
    entity_id: uuid.UUID | None = None,
    kind: DocumentKind | None = None,
):
    access.gate(user, Entity.document, Action.read)
    statement = access.scope(user, Entity.document, select(Document))
    for column, value in (
        (Document.entity_type, entity_type),
        (Document.entity_id, entity_id),
        (Document.kind, kind),
    ):
        if value is not None:
            statement = statement.where(col(column) == value)
    rows, total = await paginate(session, statement, page, [col(Document.created_at).desc(), col(Document.id)])
    items = [await document_out(session, row, with_versions=False) for row in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


async def readable(session, user: User, document_id: uuid.UUID) -> Document:
    access.gate(user, Entity.document, Action.read)
    document: Document = await access.visible(session, user, Entity.document, document_id)
    return document


@router.get("/{document_id}", response_model=DocumentOut, summary="A document and its versions")
async def get_document(document_id: uuid.UUID, session: SessionDep, user: CurrentUser):
    return await document_out(session, await readable(session, user, document_id))


@router.get("/{document_id}/versions", response_model=Page[VersionOut], summary="A document's versions, oldest first")
async def list_versions(document_id: uuid.UUID, session: SessionDep, user: CurrentUser, page: PageDep):
    document = await readable(session, user, document_id)
    statement = select(DocumentVersion).where(DocumentVersion.document_id == document.id)
    rows, total = await paginate(session, statement, page, [col(DocumentVersion.number)])
    return Page(items=[version_out(r) for r in rows], total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/{document_id}/versions",
    response_model=DocumentOut,
    status_code=201,
    summary="Upload a new version of a document (multipart), scanned before it is stored",
    responses={
        413: {"description": "larger than DOCUMENT_MAX_BYTES"},
        415: {"description": "not a PDF, PNG or JPEG by its content"},
        422: {"description": "an empty file, or malware found (code malware_detected)"},
        503: {"description": "the scanner could not be reached: nothing stored"},
    },
)
async def add_version(
    request: Request,
    document_id: uuid.UUID,
    file: UploadedFile,
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
    cipher: FileCipherDep,
    user: CurrentUser,
    key: OptionalKey = None,
):
    document = await readable(session, user, document_id)
    access.check_upload_document(user, document.id, document.org_id, document.kind)
    data, content_type = await read_checked(file, settings)
    upload_key = upload_id(user, key, f"document:{document.id}", data)
    if await session.get(DocumentVersion, upload_key) is None:
        filename = clean_filename(file.filename)
        await session.commit()
        result = await upload(
            request,
            client,
            settings,
            cipher,
            user,
            UploadInput(
                upload_id=upload_key,
                document_id=document.id,
                new_document=False,
                org_id=document.org_id,
                entity_type=document.entity_type,
                entity_id=document.entity_id,
                kind=document.kind,
                sensitivity=document.sensitivity,
                title=document.title,
                filename=filename,
                content_type=content_type,
                size_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                key_id="",
                created_by=user.id,
            ),
            data,
        )
        refused_if_infected(result)
        await session.refresh(document)
    return await document_out(session, document)


async def version_of(session, document: Document, number: int) -> DocumentVersion:
    row = (
        await session.exec(
            select(DocumentVersion).where(DocumentVersion.document_id == document.id, DocumentVersion.number == number)
        )
    ).first()
    if row is None:
        raise not_found("document version", f"{document.id}/{number}")
    return row


VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post(
    "/{document_id}/versions/{number}/link",
    response_model=LinkOut,
    summary="A signed download link of one version, valid for DOCUMENT_LINK_TTL (or expires_in seconds, if less)",
)
async def download_link(
    document_id: uuid.UUID,
    number: VersionNumber,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    expires_in: Annotated[int | None, Query(ge=1, le=86_400, description="seconds; at most DOCUMENT_LINK_TTL")] = None,
):
    document = await readable(session, user, document_id)
    await version_of(session, document, number)
    ttl = settings.document_link_ttl.total_seconds()
    expires = math.ceil(datetime.now(UTC).timestamp() + min(expires_in or ttl, ttl))  # never less than asked
    signature = link_signature(settings, document.id, number, expires, user.id)
    return LinkOut(
        url=f"/api/v1/documents/{document.id}/versions/{number}/content"
        f"?expires={expires}&requester={user.id}&signature={signature}",
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


@router.get(
    "/{document_id}/versions/{number}/content",
    response_class=RawResponse,
    summary="Download one version through a signed link (POST .../link): no Authorization header",
    responses={
        200: {"content": {"application/pdf": {}, "image/png": {}, "image/jpeg": {}}},
        403: {"description": "the link is not valid (altered), or its requester may no longer see the document"},
        410: {"description": "the link has expired"},
    },
)
async def download(
    request: Request,
    document_id: uuid.UUID,
    number: VersionNumber,
    session: SessionDep,
    settings: SettingsDep,
    cipher: FileCipherDep,
    expires: Annotated[int, Query(ge=0, le=2**53)],
    requester: uuid.UUID,
    signature: Annotated[str, Query(pattern=r"^[0-9a-f]{64}$", description="HMAC-SHA256, hex")],
):
    try:
        check_link(settings, document_id, number, expires, requester, signature, datetime.now(UTC))
    except LinkRefused as refused:
        raise AppError(refused.status, refused.code, refused.message) from None
    user = await session.get(User, requester)
    if user is None or not user.is_active:
        raise AppError(403, "invalid_link", "the user this link was made for is no longer active")
    document = await readable(session, user, document_id)  # still theirs to see: access may have changed since
    version = await version_of(session, document, number)
    try:
        sealed = await storage_of(request).get(version.storage_key)
    except KeyError:  # the row outlived its object (a restore from an older bucket, a manual delete): say so
        log.error("document content missing", extra={"document_id": str(document.id), "version": number})
        raise AppError(
            410, "content_missing", f"the stored content of version {number} is missing; operators have been told"
        ) from None
    content = cipher.decrypt(version.key_id, sealed, sealing_context(document.id, version.id))
    if document.sensitivity == Sensitivity.sensitive:
        await audit.record(
            session,
            actor=user.email,
            actor_id=user.id,
            action="document.downloaded",
            entity_type="document",
            entity_id=document.id,
            after={"version": number, "sha256": version.sha256, "link_expires": expires},
        )
        await session.commit()
    return RawResponse(
        content,
        media_type=version.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{version.filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
