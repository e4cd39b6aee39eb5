"""Monthly statements: the list per account, the PDF of one month, and a run started by hand."""

import asyncio
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response as RawResponse
from pydantic import BaseModel, Field, field_validator
from sqlmodel import col, select
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from api.deps import CurrentUser, ReadSessionDep, SessionDep, SettingsDep, TemporalDep, allowed
from api.errors import AppError, not_found
from api.pagination import Page, PageDep, paginate
from core import statements as ledger_statements
from core.access import Action, Entity
from core.task_queues import queue_for
from documents.statement import StatementData, StatementLine, render_statement
from domain.accounts import visible_account
from models.ledger import LedgerAccount
from models.statements import PERIOD_PATTERN, Statement, StatementRunInput, period_bounds, period_ended
from models.users import Organization, User
from workflows.monthly_statements import MonthlyStatementsWorkflow

router = APIRouter(prefix="/accounts", tags=["statements"])
runs_router = APIRouter(prefix="/statements", tags=["statements"])

# A run writes every organization's statements: superuser and bank_operations only.
StatementRunner = Annotated[User, Depends(allowed(Entity.statement_run, Action.run))]


class StatementOut(BaseModel):
    account_id: uuid.UUID
    period: str = Field(examples=["2026-10"])
    period_start: date
    period_end: date
    opening_balance: Decimal
    closing_balance: Decimal
    interest: Decimal
    entry_count: int
    generated_at: datetime
    pdf_url: str


def statement_out(row: Statement) -> StatementOut:
    return StatementOut(
        **row.model_dump(exclude={"id"}), pdf_url=f"/api/v1/accounts/{row.account_id}/statements/{row.period}.pdf"
    )


def checked_period(period: str) -> str:
    try:
        period_bounds(period)
    except ValueError as exc:
        raise AppError(422, "invalid_period", str(exc), {"period": period, "pattern": PERIOD_PATTERN}) from exc
    return period


def masked(account: LedgerAccount) -> str:
    return "****" + account.id.hex[-4:]


@router.get(
    "/{account_id}/statements",
    response_model=Page[StatementOut],
    summary="The account's monthly statements, newest first",
)
async def list_statements(account_id: uuid.UUID, session: ReadSessionDep, user: CurrentUser, page: PageDep):
    account = await visible_account(session, user, account_id)
    statement = select(Statement).where(Statement.account_id == account.id)
    rows, total = await paginate(session, statement, page, [col(Statement.period).desc()])
    return Page(items=[statement_out(r) for r in rows], total=total, limit=page.limit, offset=page.offset)


@router.get(
    "/{account_id}/statements/{period}.pdf",
    response_class=RawResponse,
    summary="One month's statement as a PDF (period YYYY-MM)",
    responses={200: {"content": {"application/pdf": {}}}},
)
async def statement_pdf(
    account_id: uuid.UUID,
    # The pattern is documented; checked_period answers 422 invalid_period.
    period: Annotated[str, Path(json_schema_extra={"pattern": PERIOD_PATTERN})],
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
):
    account = await visible_account(session, user, account_id)
    checked_period(period)
    row = (
        await session.exec(select(Statement).where(Statement.account_id == account.id, Statement.period == period))
    ).first()
    if row is None:
        raise not_found("statement", f"{account.id}/{period}")
    opening, entries = await ledger_statements.opening_and_entries(
        session, account.id, account.normal_balance, row.period_start, row.period_end, row.generated_at
    )
    lines, balance = [], opening
    for entry in entries:
        balance += entry.amount
        lines.append(
            StatementLine(
                effective_date=entry.effective_date,
                description=entry.description,
                amount=entry.amount,
                balance=balance,
                is_interest=entry.entry_type == ledger_statements.INTEREST_ENTRY_TYPE,
            )
        )
    owner = await session.get(User, account.owner_id) if account.owner_id else None
    org = await session.get(Organization, account.org_id) if account.org_id else None
    data = StatementData(
        institution=org.name if org else "Back office",
        account_name=account.name,
        account_number=masked(account),
        account_type=account.type,
        owner_name=owner.full_name if owner else None,
        period=period,
        period_start=row.period_start,
        period_end=row.period_end,
        opening_balance=opening,
        closing_balance=balance,
        interest=sum((line.amount for line in lines if line.is_interest), Decimal("0.00")),
        lines=tuple(lines),
        generated_on=row.generated_at.astimezone(ZoneInfo(settings.business_timezone)).date(),
        currency=account.currency,
    )
    return RawResponse(
        await asyncio.to_thread(render_statement, data),  # CPU-bound reportlab: off the event loop
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="statement-{period}-{masked(account)[-4:]}.pdf"'},
    )


class StatementRunIn(BaseModel):
    period: str = Field(pattern=PERIOD_PATTERN, examples=["2026-10"])
    notify_owners: bool = True

    @field_validator("period")
    @classmethod
    def _valid_period(cls, period: str) -> str:
        period_bounds(period)
        return period


class StatementRunOut(BaseModel):
    period: str
    workflow_id: str
    run_id: str | None


@runs_router.post(
    "/runs",
    response_model=StatementRunOut,
    status_code=202,
    summary="Write the statements of a month now, for every organization (superuser, "
    "bank_operations); the schedule does it monthly",
)
async def run_statements(body: StatementRunIn, client: TemporalDep, settings: SettingsDep, _: StatementRunner):
    if not period_ended(body.period, datetime.now(UTC), settings.business_timezone):
        raise AppError(
            422,
            "period_not_ended",
            f"{body.period} is not over yet in {settings.business_timezone}: "
            "statements are written once, after the month",
            {"period": body.period},
        )
    workflow_id = f"statements-{body.period}"
    # A finished run may be started again (it writes only what is missing); a running one is joined.
    handle = await client.start_workflow(
        MonthlyStatementsWorkflow.run,
        StatementRunInput(period=body.period, timezone=settings.business_timezone, notify_owners=body.notify_owners),
        id=workflow_id,
        task_queue=queue_for(settings, MonthlyStatementsWorkflow),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        static_summary=f"Monthly statements for {body.period}",
    )
    return StatementRunOut(period=body.period, workflow_id=workflow_id, run_id=handle.result_run_id)
