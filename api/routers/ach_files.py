"""NACHA files sent to the ODFI, for superusers and operators (they hold account numbers: never for others)."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from sqlmodel import col, select

from api.deps import FileCipherDep, SessionDep, require_roles
from api.errors import not_found
from api.fields import BusinessDateTime
from api.pagination import Page, PageDep, paginate
from core import ach_files
from models.ach import AchFile
from models.users import Role, User

router = APIRouter(prefix="/ach/files", tags=["ach files"])

Staff = Annotated[User, Depends(require_roles(Role.superuser, Role.operator))]


class AchFileOut(BaseModel):
    id: uuid.UUID
    window_id: str
    entry_count: int
    total_debit: Decimal
    total_credit: Decimal
    status: str = Field(description="built, uploaded, rejected (by the bank) or failed (no answer by the upload "
                                    "deadline); the payments of a rejected or failed file were queued again or failed")
    odfi_file_id: str | None
    uploaded_at: datetime | None
    error: str | None = Field(None, description="the bank's answer to a rejected or failed file")
    rejected_at: datetime | None = None
    created_at: datetime


@router.get("", response_model=Page[AchFileOut], summary="NACHA files, newest first")
async def list_files(session: SessionDep, _: Staff, page: PageDep,
                     status: Literal["built", "uploaded", "rejected", "failed"] | None = None,
                     created_from: BusinessDateTime | None = None, created_to: BusinessDateTime | None = None):
    statement = select(AchFile)
    if status:
        statement = statement.where(AchFile.status == status)
    if created_from:
        statement = statement.where(AchFile.created_at >= created_from)
    if created_to:
        statement = statement.where(AchFile.created_at < created_to)
    items, total = await paginate(session, statement, page, [col(AchFile.created_at).desc()])
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{file_id}", response_class=PlainTextResponse, summary="Download one NACHA file (.ach)")
async def download_file(file_id: uuid.UUID, session: SessionDep, _: Staff, cipher: FileCipherDep):
    ach_file = await session.get(AchFile, file_id)
    if ach_file is None:
        raise not_found("ACH file", file_id)
    return PlainTextResponse(ach_files.content(cipher, ach_file), headers={
        "Content-Disposition": f'attachment; filename="{ach_file.window_id.replace(":", "")}-{file_id}.ach"'})
