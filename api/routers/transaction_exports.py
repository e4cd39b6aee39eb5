"""Exports of members' transactions (domain/exports.py): a small one downloaded at once (CSV and JSON streamed as
read, XLSX, a PDF statement), a large one made in the background and handed out by a signed link that needs no
sign-in until it expires. GDPR exports of a member live under /members (api/routers/gdpr_exports.py) and are listed
and downloaded here."""

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import Response as RawResponse
from fastapi.responses import StreamingResponse

from api.deps import CurrentUser, FileCipherDep, IdempotencyKey, SessionDep, SettingsDep, TemporalDep
from api.errors import AppError
from api.pagination import Page, PageDep
from core import audit
from domain import export_formats, exports
from domain.export_filters import ExportFilters, rows_query
from domain.exports import ExportIn, ExportOut
from models.exports import ExportKind, ExportStatus, TransactionExport

log = logging.getLogger(__name__)

router = APIRouter(prefix="/transaction-exports", tags=["exports"])

FILE_TYPES: dict[str, dict] = {
    k: {} for k in ("text/csv", "application/json", export_formats.CONTENT_TYPES["xlsx"], "application/pdf")
}


@router.get(
    "/download",
    response_class=RawResponse,
    responses={
        200: {"content": FILE_TYPES},
        422: {"description": "`export_too_large`: above the configured row count, POST /transaction-exports"},
    },
    summary="Download the transactions you can see, filtered, at once (CSV/JSON streamed, XLSX, a PDF statement)",
)
async def download(
    params: Annotated[ExportIn, Query()],
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
):
    filters = ExportFilters.model_validate(params.model_dump(exclude={"format"}))
    await exports.sync_check(session, user, settings, filters)
    fmt = params.format.value
    name = f"transactions-{datetime.now(UTC):%Y%m%d%H%M%S}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    query = rows_query(user, filters)
    if fmt in ("csv", "json"):
        db = request.app.state.db
        render = export_formats.csv_stream if fmt == "csv" else export_formats.json_stream

        async def body() -> AsyncIterator[bytes]:
            # a session of its own: the request's is closed once the streaming begins
            async with db.read_session() as reader:
                result = await reader.stream(query)
                async for chunk in render(result.mappings()):
                    yield chunk

        return StreamingResponse(body(), media_type=export_formats.CONTENT_TYPES[fmt], headers=headers)
    rows = list((await session.execute(query)).mappings().all())
    # rendered in a thread: a few thousand rows of XLSX or PDF would otherwise hold the event loop
    if fmt == "xlsx":
        content = await asyncio.to_thread(export_formats.xlsx_bytes, rows)
    else:
        opening = await exports.opening_total(session, user, filters)
        statement = export_formats.Statement(filters.date_from, filters.date_to, opening, rows)
        content = await asyncio.to_thread(export_formats.pdf_bytes, statement)
    return RawResponse(content, media_type=export_formats.CONTENT_TYPES[fmt], headers=headers)


@router.post(
    "",
    response_model=ExportOut,
    status_code=202,
    responses={
        200: {"description": "the same Idempotency-Key and body again: the export already asked for"},
        409: {"description": "the Idempotency-Key was used for another export"},
    },
    summary="Export transactions in the background; the requester is told (email, in-app) with a signed link",
)
async def request_export(
    body: ExportIn,
    key: IdempotencyKey,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    client: TemporalDep,
    settings: SettingsDep,
) -> ExportOut:
    out, created = await exports.request_export(session, user, client, settings, body, key)
    response.status_code = 202 if created else 200
    return out


@router.get("", response_model=Page[ExportOut], summary="Your exports (transactions and GDPR), newest first")
async def list_exports(
    session: SessionDep, user: CurrentUser, page: PageDep, kind: ExportKind | None = None
) -> Page[ExportOut]:
    return await exports.list_exports(session, user, page, kind)


@router.get("/{export_id}", response_model=ExportOut, summary="An export: queued, ready or failed")
async def get_export(export_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> ExportOut:
    return ExportOut.model_validate(await exports.visible_export(session, user, export_id))


@router.get(
    "/{export_id}/file",
    response_class=RawResponse,
    responses={
        200: {"content": {**FILE_TYPES, "application/zip": {}}},
        403: {"description": "`invalid_link`: the signature does not match (altered) or the link expired"},
        409: {"description": "`not_ready` or `export_failed`"},
        410: {"description": "the stored file is missing"},
    },
    summary="Download an export's file by its signed link (no sign-in: the signature is the credential)",
)
async def download_file(
    export_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    cipher: FileCipherDep,
    expires: Annotated[int, Query(ge=0)],
    signature: Annotated[str, Query(pattern=r"^[0-9a-f]{64}$")],
):
    exports.check_link(settings, export_id, expires, signature)
    export = await session.get(TransactionExport, export_id)
    if export is None:
        raise AppError(404, "not_found", f"export {export_id} not found")
    if export.status == ExportStatus.failed:
        raise AppError(409, "export_failed", f"the export could not be made: {export.failure}")
    if export.status != ExportStatus.ready or export.storage_key is None or export.key_id is None:
        raise AppError(409, "not_ready", "the export is still being made", {"status": export.status})
    try:
        sealed = await request.app.state.document_storage.get(export.storage_key)
    except KeyError:
        log.error("export file missing", extra={"export_id": str(export.id)})
        raise AppError(410, "content_missing", "the stored export file is missing; operators have been told") from None
    content = cipher.decrypt(export.key_id, sealed, f"transaction-export:{export.id}")
    await audit.record(
        session,
        actor="signed-link",
        actor_id=None,
        action="transaction_export.downloaded",
        entity_type="transaction_export",
        entity_id=export.id,
        after={"filename": export.filename, "expires": expires},
    )
    await session.commit()
    return RawResponse(
        content,
        media_type=export.content_type,
        headers={"Content-Disposition": f'attachment; filename="{export.filename}"'},
    )
