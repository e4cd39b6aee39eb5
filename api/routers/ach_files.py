"""NACHA files sent to the ODFI: bank-wide (one file carries every organization's entries, with account numbers),
so for the superuser and bank_operations only (core/access.py), never one organization's operator."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from sqlmodel import col, select

from api.deps import FileCipherDep, ReadSessionDep, SessionDep, allowed
from api.fields import BusinessDateTime
from api.pagination import Page, PageDep, paginate
from core import access, ach_files
from core.access import Action, Entity
from models.ach import AchFile
from models.users import User

router = APIRouter(prefix="/ach/files", tags=["ach files"])

FileReader = Annotated[User, Depends(allowed(Entity.ach_file, Action.read))]


class AchFileOut(BaseModel):
    id: uuid.UUID
    window_id: str
    entry_count: int
    total_debit: Decimal
    total_credit: Decimal
    status: str = Field(
        description="built, uploaded, rejected (by the bank) or failed (no answer by the upload "
        "deadline); the payments of a rejected or failed file were queued again or failed"
    )
    odfi_file_id: str | None
    uploaded_at: datetime | None
    error: str | None = Field(None, description="the bank's answer to a rejected or failed file")
    rejected_at: datetime | None = None
    created_at: datetime


@router.get("", response_model=Page[AchFileOut], summary="NACHA files, newest first")
async def list_files(
    session: ReadSessionDep,
    user: FileReader,
    page: PageDep,
    status: Literal["built", "uploaded", "rejected", "failed"] | None = None,
    created_from: BusinessDateTime | None = None,
    created_to: BusinessDateTime | None = None,
):
    statement = access.scope(user, Entity.ach_file, select(AchFile))
    if status:
        statement = statement.where(AchFile.status == status)
    if created_from:
        statement = statement.where(AchFile.created_at >= created_from)
    if created_to:
        statement = statement.where(AchFile.created_at < created_to)
    items, total = await paginate(session, statement, page, [col(AchFile.created_at).desc()])
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{file_id}", response_class=PlainTextResponse, summary="Download one NACHA file (.ach)")
async def download_file(file_id: uuid.UUID, session: SessionDep, user: FileReader, cipher: FileCipherDep):
    ach_file: AchFile = await access.visible(session, user, Entity.ach_file, file_id)
    return PlainTextResponse(
        ach_files.content(cipher, ach_file),
        headers={"Content-Disposition": f'attachment; filename="{ach_file.window_id.replace(":", "")}-{file_id}.ach"'},
    )
