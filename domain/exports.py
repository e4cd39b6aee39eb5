"""Exports of members' data: a transactions export streamed at once when small, or made in the background
(`export-<id>`) when large; a GDPR export of everything held on a member (`gdpr-export-<id>`, domain/gdpr.py). A
background export's file is stored sealed and handed out by a signed link (domain/export_links.py) that works
without signing in until it expires. An export row is its requester's alone (a superuser sees all)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, literal, select
from sqlmodel import col
from sqlmodel import select as sm_select
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.errors import AppError
from api.pagination import Page, PageParams, paginate
from core import access, audit
from core.access import Action, Entity
from core.config import Settings
from core.task_queues import queue_for
from domain import export_links
from domain.export_filters import ExportFilters, rows_query, where
from models.exports import ExportInput, ExportKind, ExportStatus, TransactionExport
from models.money import MEMBER_TRANSACTIONS as MT
from models.money import MoneyShare, ShareWhat
from models.users import Role, User


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"
    xlsx = "xlsx"
    pdf = "pdf"


class ExportIn(ExportFilters):
    format: ExportFormat = ExportFormat.csv


class ExportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    kind: ExportKind
    user_id: uuid.UUID | None
    requested_by: uuid.UUID
    filters: dict | None
    format: str
    status: ExportStatus
    filename: str | None
    row_count: int | None
    size_bytes: int | None
    failure: str | None
    workflow_id: str
    created_at: datetime
    finished_at: datetime | None


def too_large(count: int, limit: int) -> AppError:
    return AppError(
        422,
        "export_too_large",
        f"{count} transactions: above {limit} an export is made in the background: POST /api/v1/transaction-exports",
        {"rows": count, "limit": limit, "async_path": "/api/v1/transaction-exports"},
    )


async def count_rows(session, user: User, filters: ExportFilters) -> int:
    return int((await session.execute(select(func.count()).select_from(MT).where(*where(user, filters)))).scalar_one())


async def opening_total(session, user: User, filters: ExportFilters) -> Decimal:
    """The sum of the same rows before the period (the statement's opening total); zero without a start date."""
    if filters.date_from is None:
        return Decimal("0.00")
    before = filters.model_copy(update={"date_from": None, "date_to": None})
    query = select(func.coalesce(func.sum(MT.c.amount), 0)).where(
        *where(user, before), MT.c.posted_on < filters.date_from
    )
    return Decimal((await session.execute(query)).scalar_one())


def check_can_export(user: User) -> None:
    access.gate(user, Entity.transaction_export, Action.create)


async def sync_check(session, user: User, settings: Settings, filters: ExportFilters) -> int:
    """The number of rows of a download asked for now; a 422 pointing at the background path above the limit."""
    check_can_export(user)
    count = await count_rows(session, user, filters)
    if count > settings.export_sync_max_rows:
        raise too_large(count, settings.export_sync_max_rows)
    return count


def workflow_id(kind: ExportKind, export_id: uuid.UUID) -> str:
    return f"{'gdpr-export' if kind == ExportKind.gdpr else 'export'}-{export_id}"


async def _create(
    session,
    user: User,
    client: Client,
    settings: Settings,
    *,
    kind: ExportKind,
    member_id: uuid.UUID | None,
    filters: dict | None,
    format: str,
    key: str,
) -> tuple[ExportOut, bool]:
    idempotency_key = f"{user.id}:{key}"
    existing = (
        await session.exec(sm_select(TransactionExport).where(TransactionExport.idempotency_key == idempotency_key))
    ).first()
    if existing is not None:
        if (existing.kind, existing.user_id, existing.filters, existing.format) != (kind, member_id, filters, format):
            raise AppError(409, "idempotency_key_reused", "this Idempotency-Key was used for another export")
        await session.commit()
        await start(client, settings, existing)  # a crash between the insert and the start: start it now
        return ExportOut.model_validate(existing), False
    export_id = uuid.uuid4()
    export = TransactionExport(
        id=export_id,
        kind=kind,
        user_id=member_id,
        requested_by=user.id,
        filters=filters,
        format=format,
        status=ExportStatus.queued,
        idempotency_key=idempotency_key,
        workflow_id=workflow_id(kind, export_id),
    )
    session.add(export)
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action=f"{kind}_export.requested",
        entity_type="transaction_export",
        entity_id=export_id,
        after={"kind": kind, "user_id": str(member_id) if member_id else None, "filters": filters, "format": format},
    )
    await session.commit()
    await start(client, settings, export)
    return ExportOut.model_validate(export), True


async def request_export(
    session, user: User, client: Client, settings: Settings, body: ExportIn, key: str
) -> tuple[ExportOut, bool]:
    check_can_export(user)
    if body.member_id is not None:
        await check_member_readable(session, user, body.member_id)
    filters = body.model_dump(mode="json", exclude={"format"}, exclude_none=True)
    return await _create(
        session,
        user,
        client,
        settings,
        kind=ExportKind.transactions,
        member_id=body.member_id,
        filters=filters,
        format=body.format.value,
        key=key,
    )


async def check_member_readable(session, user: User, member_id: uuid.UUID) -> None:
    """A member whose transactions the caller may read at least in part (access.money_rows with the member's own
    ids: themself, a superuser, their organization's staff, a grantee of a live share of any scope); a 404 for
    anyone else, as for a member that does not exist."""
    member = await session.get(User, member_id)
    if member is None or member.role != Role.member:
        raise access.not_visible(user, Entity.member, member_id, exists=member is not None)
    readable = access.money_rows(user, ShareWhat.transactions, literal(member.id), literal(member.org_id))
    shared = select(col(MoneyShare.id)).where(
        col(MoneyShare.owner_id) == member.id,
        col(MoneyShare.grantee_id) == user.id,
        col(MoneyShare.what) == ShareWhat.transactions,
        col(MoneyShare.revoked_at).is_(None),
    )
    if not (await session.execute(select(readable | shared.exists()))).scalar():
        raise access.not_visible(user, Entity.member, member_id)


async def request_gdpr(
    session, user: User, client: Client, settings: Settings, member_id: uuid.UUID, key: str
) -> tuple[ExportOut, bool]:
    """The member themself, an org admin of their organization or a superuser; their organization's other staff see
    the member but may not (403); anyone else does not see them (404)."""
    member = await session.get(User, member_id)
    if member is None or member.role != Role.member:
        raise access.not_visible(user, Entity.member, member_id, exists=member is not None)
    if user.id != member.id and not access.is_super(user):
        same_org = user.org_id is not None and user.org_id == member.org_id
        if not (same_org and user.role in (Role.org_admin, Role.operator)):
            raise access.not_visible(user, Entity.member, member_id)
        if user.role != Role.org_admin:
            raise access.forbid(
                user,
                Entity.member,
                member_id,
                Action.create,
                "a GDPR export is asked for by the member or an org admin",
            )
    return await _create(
        session, user, client, settings, kind=ExportKind.gdpr, member_id=member.id, filters=None, format="zip", key=key
    )


async def start(client: Client, settings: Settings, export: TransactionExport) -> None:
    from workflows.export import ExportWorkflow

    try:
        await client.start_workflow(
            ExportWorkflow.run,
            ExportInput(export_id=export.id),
            id=export.workflow_id,
            task_queue=queue_for(settings, ExportWorkflow),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"{export.kind} export ({export.format})",
        )
    except WorkflowAlreadyStartedError:
        pass  # it ran already: the row says how it ended


async def visible_export(session, user: User, export_id: uuid.UUID) -> TransactionExport:
    access.gate(user, Entity.transaction_export, Action.read)
    export: TransactionExport = await access.visible(session, user, Entity.transaction_export, export_id)
    return export


async def list_exports(session, user: User, page: PageParams, kind: ExportKind | None) -> Page[ExportOut]:
    access.gate(user, Entity.transaction_export, Action.read)
    statement = access.scope(user, Entity.transaction_export, sm_select(TransactionExport))
    if kind is not None:
        statement = statement.where(TransactionExport.kind == kind)
    order = [col(TransactionExport.created_at).desc(), col(TransactionExport.id)]
    rows, total = await paginate(session, statement, page, order)
    return Page(items=[ExportOut.model_validate(r) for r in rows], total=total, limit=page.limit, offset=page.offset)


def check_link(settings: Settings, export_id: uuid.UUID, expires: int, signature: str) -> None:
    if not export_links.valid(settings, export_id, expires, signature, datetime.now(UTC)):
        raise AppError(403, "invalid_link", "this download link is not valid: altered, not ours, or expired")


__all__ = ["ExportFilters", "rows_query"]
