"""Transaction imports (issue 15 item 2): a member's CSV of their bank's lines, for one of their external accounts,
stored sealed as it is uploaded (core/import_files.py) and loaded in bulk by an `import-<id>` workflow
(workflows/transaction_import.py). Who may: a member for their own external account, an organization's admin for a
member's account of their organization; a member reads their own imports, the organization's admins and operators
their organization's (core/access.py)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.errors import AppError
from api.pagination import Page, paginate
from core import access, audit, import_files
from core.access import Action, Entity
from core.config import Settings
from core.crypto import FileCipher
from core.storage import ObjectStorage
from core.task_queues import queue_for
from models.external_accounts import ExternalAccount
from models.money import ImportRejection, ImportSource, ImportStatus, TransactionImport
from models.transaction_imports import ImportInput, ImportProgress, LinkedImportInput
from models.users import User

log = logging.getLogger(__name__)
QUERY_TIMEOUT = timedelta(seconds=2)  # a GET never waits long on a busy or absent worker


class TransactionImportOut(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    user_id: uuid.UUID
    external_account_id: uuid.UUID | None
    source: str
    filename: str | None
    size_bytes: int | None
    status: str
    rows_read: int
    rows_loaded: int
    rows_duplicate: int
    rows_rejected: int
    error: str | None
    workflow_id: str
    created_by: uuid.UUID
    created_at: datetime
    finished_at: datetime | None
    progress: ImportProgress | None = None  # the workflow's own count, while it runs


class RejectionOut(BaseModel):
    line_no: int
    reason: str


def out(row: TransactionImport, progress: ImportProgress | None = None) -> TransactionImportOut:
    result = TransactionImportOut.model_validate(row, from_attributes=True)
    result.progress = progress
    return result


async def existing_for_key(session, user: User, key: str) -> TransactionImport | None:
    idempotency_key = f"{user.id}:{key}"
    return (
        await session.exec(select(TransactionImport).where(TransactionImport.idempotency_key == idempotency_key))
    ).first()


async def member_account(session, user: User, external_account_id: uuid.UUID) -> ExternalAccount:
    """The external account the lines are of: one the caller may see, and a member's (whose the lines become)."""
    account: ExternalAccount = await access.visible(session, user, Entity.external_account, external_account_id)
    if account.owner_id is None:
        raise AppError(
            422,
            "not_a_member_account",
            "transactions are imported for a member's external account; this one is the organization's",
            {"external_account_id": str(external_account_id)},
        )
    return account


async def create(
    session,
    user: User,
    client: Client,
    settings: Settings,
    storage: ObjectStorage,
    cipher: FileCipher,
    external_account_id: uuid.UUID,
    filename: str | None,
    chunks: AsyncIterator[bytes],
    key: str,
) -> tuple[TransactionImportOut, bool]:
    """The import this caller's Idempotency-Key names: stored, recorded and started; or found again (False)."""
    access.gate(user, Entity.transaction_import, Action.create)
    existing = await existing_for_key(session, user, key)
    if existing is not None:
        if existing.external_account_id != external_account_id:
            raise AppError(409, "idempotency_key_reused", "this Idempotency-Key was used for another import")
        await start(client, settings, existing)  # a crash between the insert and the start: start it now
        return out(existing), False
    account = await member_account(session, user, external_account_id)
    import_id = uuid.uuid4()
    try:
        stored = await import_files.store_stream(storage, cipher, import_id, chunks, settings.import_max_bytes)
    except ValueError as error:
        raise AppError(413, "file_too_large", str(error), {"limit_bytes": settings.import_max_bytes}) from None
    assert account.owner_id is not None  # member_account checked it
    row = TransactionImport(
        id=import_id,
        org_id=account.org_id,
        user_id=account.owner_id,
        external_account_id=account.id,
        source=ImportSource.csv,
        filename=(filename or "")[:200] or None,
        storage_key=import_files.segment_key(import_id, 0).rsplit("/", 1)[0],
        workflow_id=f"import-{import_id}",
        status=ImportStatus.running,
        created_by=user.id,
        idempotency_key=f"{user.id}:{key}",
        key_id=stored.key_id,
        size_bytes=stored.size_bytes,
        segments=stored.segments,
        segment_bytes=stored.segment_bytes,
    )
    made = await record_and_start(
        session, user, client, settings, row, key, ["user_id", "external_account_id", "filename", "size_bytes"]
    )
    if not made[1]:  # another request with the same key won: this upload is not needed
        await import_files.delete(storage, import_id, stored.segments)
    return made


class LinkedSyncIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_account_id: uuid.UUID = Field(description="a member's external account linked through the provider")


async def create_linked(
    session, user: User, client: Client, settings: Settings, body: LinkedSyncIn, key: str
) -> tuple[TransactionImportOut, bool]:
    """A sync of a linked account's transactions from the provider's feed (source 'linked'), from the cursor its
    last completed sync ended at: recorded and started, or found again by this caller's Idempotency-Key (False)."""
    access.gate(user, Entity.transaction_import, Action.create)
    existing = await existing_for_key(session, user, key)
    if existing is not None:
        if existing.external_account_id != body.external_account_id or existing.source != ImportSource.linked:
            raise AppError(409, "idempotency_key_reused", "this Idempotency-Key was used for another import")
        await start(client, settings, existing)
        return out(existing), False
    account = await member_account(session, user, body.external_account_id)
    if not (account.source == "linked" and account.provider_item_id and account.provider_account_id):
        raise AppError(
            422,
            "not_a_linked_account",
            "this account was entered by hand: import its lines as a CSV instead",
            {"external_account_id": str(account.id)},
        )
    assert account.owner_id is not None  # member_account checked it
    last = (
        await session.exec(
            select(TransactionImport.cursor)
            .where(
                TransactionImport.external_account_id == account.id,
                TransactionImport.source == ImportSource.linked,
                TransactionImport.status == ImportStatus.completed,
            )
            .order_by(col(TransactionImport.finished_at).desc())
            .limit(1)
        )
    ).first()
    import_id = uuid.uuid4()
    row = TransactionImport(
        id=import_id,
        org_id=account.org_id,
        user_id=account.owner_id,
        external_account_id=account.id,
        source=ImportSource.linked,
        filename=f"{account.institution_name} ••{account.account_last4}"[:200],
        workflow_id=f"import-{import_id}",
        status=ImportStatus.running,
        cursor=last,
        created_by=user.id,
        idempotency_key=f"{user.id}:{key}",
    )
    return await record_and_start(
        session, user, client, settings, row, key, ["user_id", "external_account_id", "source", "cursor"]
    )


async def record_and_start(
    session, user: User, client: Client, settings: Settings, row: TransactionImport, key: str, audited: list[str]
) -> tuple[TransactionImportOut, bool]:
    """The new import row written with its audit entry and its workflow started; when a concurrent request with
    the same Idempotency-Key committed first, that one's import instead (created False)."""
    session.add(row)
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="transaction_import.created",
        entity_type="transaction_import",
        entity_id=row.id,
        after=audit.snapshot(row, audited),
    )
    try:
        await session.commit()
    except IntegrityError:  # the same key's other request won the race: its import is the one
        await session.rollback()
        existing = await existing_for_key(session, user, key)
        if existing is None:
            raise
        return out(existing), False
    await start(client, settings, row)
    return out(row), True


async def start(client: Client, settings: Settings, row: TransactionImport) -> None:
    from workflows.linked_import import LinkedImportWorkflow
    from workflows.transaction_import import TransactionImportWorkflow

    try:
        if row.source == ImportSource.linked:
            await client.start_workflow(
                LinkedImportWorkflow.run,
                LinkedImportInput(import_id=row.id, cursor=row.cursor),
                id=row.workflow_id,
                task_queue=queue_for(settings, LinkedImportWorkflow),
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"Sync of {row.filename or 'a linked account'} for member {row.user_id}",
            )
            return
        await client.start_workflow(
            TransactionImportWorkflow.run,
            ImportInput(import_id=row.id),
            id=row.workflow_id,
            task_queue=queue_for(settings, TransactionImportWorkflow),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"Import of {row.filename or 'a CSV'} for member {row.user_id}",
        )
    except WorkflowAlreadyStartedError:
        pass  # it ran already: the row says how it ended


async def visible_import(session, user: User, import_id: uuid.UUID) -> TransactionImport:
    access.gate(user, Entity.transaction_import, Action.read)
    row: TransactionImport = await access.visible(session, user, Entity.transaction_import, import_id)
    return row


async def progress(client: Client, row: TransactionImport) -> ImportProgress | None:
    """The workflow's progress query while the import runs; none when it cannot answer now (the row still does)."""
    if row.status != ImportStatus.running:
        return None
    from workflows.transaction_import import TransactionImportWorkflow

    try:
        return await client.get_workflow_handle(row.workflow_id).query(
            TransactionImportWorkflow.progress, rpc_timeout=QUERY_TIMEOUT
        )
    except (RPCError, WorkflowQueryFailedError) as error:  # no worker up just now: the row's counts still answer
        log.warning("import progress query failed", extra={"workflow_id": row.workflow_id, "error": str(error)})
        return None


async def list_imports(session, user: User, page) -> Page[TransactionImportOut]:
    access.gate(user, Entity.transaction_import, Action.read)
    statement = access.scope(user, Entity.transaction_import, select(TransactionImport))
    rows, total = await paginate(
        session, statement, page, [col(TransactionImport.created_at).desc(), col(TransactionImport.id)]
    )
    return Page(items=[out(r) for r in rows], total=total, limit=page.limit, offset=page.offset)


async def rejections(session, user: User, import_id: uuid.UUID, page) -> Page[RejectionOut]:
    await visible_import(session, user, import_id)
    statement = select(ImportRejection).where(ImportRejection.import_id == import_id)
    rows, total = await paginate(session, statement, page, [col(ImportRejection.line_no)])
    return Page(
        items=[RejectionOut(line_no=r.line_no, reason=r.reason) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
