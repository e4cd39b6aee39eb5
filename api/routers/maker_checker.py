"""Maker-checker requests (domain/maker_checker.py): where a large transaction, a manual journal entry or a period
close stands while it waits on its checker, and what it became (its journal entry, its closed period). The maker asks
at the resource's own endpoint (deposits, withdrawals, transfers, journal entries, periods); the checker decides in
the approvals inbox."""

import uuid

from fastapi import APIRouter
from sqlmodel import col, select

from api.deps import CurrentUser, ReadSessionDep, SessionDep
from api.pagination import Page, PageDep, paginate
from core import access
from core.access import Entity
from domain.maker_checker import MakerCheckerOut, view
from models.maker_checker import MakerCheckerKind, MakerCheckerRequest, MakerCheckerStatus

router = APIRouter(prefix="/maker-checker", tags=["maker-checker"])


@router.get("", response_model=Page[MakerCheckerOut], summary="Maker-checker requests you can see, newest first")
async def list_requests(
    session: ReadSessionDep,
    user: CurrentUser,
    page: PageDep,
    status: MakerCheckerStatus | None = None,
    kind: MakerCheckerKind | None = None,
    account_id: uuid.UUID | None = None,
):
    statement = access.scope(user, Entity.maker_checker_request, select(MakerCheckerRequest))
    for column, value in (
        (MakerCheckerRequest.status, status),
        (MakerCheckerRequest.kind, kind),
        (MakerCheckerRequest.account_id, account_id),
    ):
        if value is not None:
            statement = statement.where(column == value)
    items, total = await paginate(
        session, statement, page, [col(MakerCheckerRequest.created_at).desc(), col(MakerCheckerRequest.id)]
    )
    return Page(items=[view(r) for r in items], total=total, limit=page.limit, offset=page.offset)


@router.get(
    "/{request_id}",
    response_model=MakerCheckerOut,
    summary="A maker-checker request: its status, its approval request, and once applied its journal entry or period",
)
async def get_request(request_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> MakerCheckerOut:
    return view(await access.visible(session, user, Entity.maker_checker_request, request_id))
