"""Interest for operators and account holders: a month's posting (its stored summary, or the live progress of
its workflow while it runs) and an account's daily accruals."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel
from sqlmodel import col, select
from temporalio.service import RPCError

from api.crud import required
from api.deps import CurrentUser, ReadSessionDep, SessionDep, TemporalDep, allowed
from api.errors import not_found
from api.fields import BusinessDate
from api.pagination import Page, PageDep, paginate
from core.access import Action, Entity
from domain.accounts import visible_account
from models.interest import PERIOD, InterestAccrual, InterestPostingRun, PostingProgress
from models.users import User
from workflows.interest_posting import InterestPostingWorkflow
from workflows.month_end_posting import posting_workflow_id

router = APIRouter(tags=["interest"])

# A month's posting is bank-wide (every organization's accounts): superuser and bank_operations only.
PostingReader = Annotated[User, Depends(allowed(Entity.interest_posting, Action.read))]


class PostingOut(BaseModel):
    period: str
    workflow_id: str
    status: str  # completed | running | the workflow's own status (failed, terminated…)
    accounts: int | None = None  # the stored summary, once completed
    total: Decimal | None = None
    completed_at: datetime | None = None
    progress: PostingProgress | None = None  # while it runs: accounts done / total, amount posted


class AccrualOut(BaseModel):
    day: date
    balance: Decimal
    amount: Decimal  # 10 decimals; rounded to cents once, at month-end posting
    product_id: uuid.UUID


@router.get(
    "/interest-postings/{period}",
    response_model=PostingOut,
    summary="A month's interest posting: its summary, or its progress while it runs (superuser, bank_operations)",
)
async def get_posting(
    period: Annotated[str, Path(pattern=PERIOD, examples=["2026-10"])],
    session: SessionDep,
    client: TemporalDep,
    _: PostingReader,
):
    summary = await session.get(InterestPostingRun, period)
    workflow_id = posting_workflow_id(period)
    await session.commit()  # no pooled connection held across the call to Temporal
    if summary is not None:
        return PostingOut(
            period=period,
            workflow_id=workflow_id,
            status="completed",
            accounts=summary.accounts,
            total=summary.total,
            completed_at=summary.completed_at,
        )
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
        status = required(description.status, "the workflow's status")
        progress = await handle.query(InterestPostingWorkflow.progress) if status.name == "RUNNING" else None
    except RPCError as exc:
        raise not_found("interest posting", period) from exc
    return PostingOut(period=period, workflow_id=workflow_id, status=status.name.lower(), progress=progress)


@router.get(
    "/accounts/{account_id}/accruals",
    response_model=Page[AccrualOut],
    summary="An account's daily interest accruals, newest first",
)
async def list_accruals(
    account_id: uuid.UUID,
    session: ReadSessionDep,
    user: CurrentUser,
    page: PageDep,
    day_from: Annotated[BusinessDate | None, Query(description="inclusive")] = None,
    day_to: Annotated[BusinessDate | None, Query(description="inclusive")] = None,
):
    account = await visible_account(session, user, account_id)
    statement = select(InterestAccrual).where(InterestAccrual.account_id == account.id)
    if day_from:
        statement = statement.where(InterestAccrual.day >= day_from)
    if day_to:
        statement = statement.where(InterestAccrual.day <= day_to)
    items, total = await paginate(session, statement, page, [col(InterestAccrual.day).desc()])
    return Page(
        items=[AccrualOut(**row.model_dump()) for row in items], total=total, limit=page.limit, offset=page.offset
    )
