"""Transaction imports: a member's CSV of their bank's lines uploaded (multipart), loaded in bulk in the background
(`import-<id>`), followed by its counts and rejected lines. Logic in domain/transaction_imports.py."""

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, Response, UploadFile

from api.deps import CurrentUser, FileCipherDep, IdempotencyKey, SessionDep, SettingsDep, TemporalDep
from api.pagination import Page, PageDep
from domain import transaction_imports
from domain.transaction_imports import LinkedSyncIn, RejectionOut, TransactionImportOut

router = APIRouter(prefix="/transaction-imports", tags=["transaction imports"])

READ_BYTES = 1024 * 1024


async def pieces(upload: UploadFile) -> AsyncIterator[bytes]:
    """The upload a megabyte at a time: never the whole file in memory."""
    while piece := await upload.read(READ_BYTES):
        yield piece


@router.post(
    "",
    response_model=TransactionImportOut,
    status_code=202,
    responses={
        200: {"description": "the same Idempotency-Key again: the import already started"},
        409: {"description": "the Idempotency-Key was used for another import"},
        413: {"description": "the file is larger than IMPORT_MAX_BYTES"},
        422: {"description": "the external account is the organization's, not a member's"},
    },
    summary="Import a CSV of a member's bank transactions (date, amount, description[, merchant, currency, category])",
)
async def create_import(
    request: Request,
    response: Response,
    key: IdempotencyKey,
    session: SessionDep,
    user: CurrentUser,
    client: TemporalDep,
    settings: SettingsDep,
    cipher: FileCipherDep,
    file: Annotated[UploadFile, File(description="the CSV, with a header row", json_schema_extra={"format": "binary"})],
    external_account_id: Annotated[uuid.UUID, Form(description="the member's external account the lines are of")],
) -> TransactionImportOut:
    made, created = await transaction_imports.create(
        session,
        user,
        client,
        settings,
        request.app.state.document_storage,
        cipher,
        external_account_id,
        file.filename,
        pieces(file),
        key,
    )
    response.status_code = 202 if created else 200
    return made


@router.post(
    "/sync",
    response_model=TransactionImportOut,
    status_code=202,
    responses={
        200: {"description": "the same Idempotency-Key again: the sync already started"},
        409: {"description": "the Idempotency-Key was used for another import"},
        422: {"description": "the account is the organization's, or was entered by hand (not linked)"},
    },
    summary="Sync a member's linked account's transactions from the account-linking provider's feed",
)
async def sync_linked(
    body: LinkedSyncIn,
    response: Response,
    key: IdempotencyKey,
    session: SessionDep,
    user: CurrentUser,
    client: TemporalDep,
    settings: SettingsDep,
) -> TransactionImportOut:
    made, created = await transaction_imports.create_linked(session, user, client, settings, body, key)
    response.status_code = 202 if created else 200
    return made


@router.get("", response_model=Page[TransactionImportOut], summary="Transaction imports you can see, newest first")
async def list_imports(session: SessionDep, user: CurrentUser, page: PageDep) -> Page[TransactionImportOut]:
    return await transaction_imports.list_imports(session, user, page)


@router.get(
    "/{import_id}",
    response_model=TransactionImportOut,
    summary="An import: its status and counts, and while it runs the workflow's own progress",
)
async def get_import(
    import_id: uuid.UUID, session: SessionDep, user: CurrentUser, client: TemporalDep
) -> TransactionImportOut:
    row = await transaction_imports.visible_import(session, user, import_id)
    return transaction_imports.out(row, await transaction_imports.progress(client, row))


@router.get(
    "/{import_id}/rejections",
    response_model=Page[RejectionOut],
    summary="The lines an import rejected: line number (the header is line 1) and reason",
)
async def list_rejections(
    import_id: uuid.UUID, session: SessionDep, user: CurrentUser, page: PageDep
) -> Page[RejectionOut]:
    return await transaction_imports.rejections(session, user, import_id, page)
