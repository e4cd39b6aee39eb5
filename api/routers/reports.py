"""Financial reports (JSON, CSV, XLSX or PDF): the statements from the ledger, the loan portfolio with provisions,
budget variance and the cash-flow forecast; the budgets themselves; closed accounting periods.

Who sees what (core/access.py report_org): org admins and operators their organization's figures; superuser and
bank_operations any organization's (org_id) or the whole bank's (no org_id). Budgets are set by an organization's
admin, or by the superuser for any organization."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.responses import JSONResponse
from fastapi.responses import Response as RawResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import OperationalError
from sqlmodel import col

from api.deps import ReadSessionDep, SessionDep, SettingsDep, TemporalDep, allowed
from api.errors import AppError, not_found
from api.fields import BusinessDate, MoneyOrZero, line_rules
from api.pagination import Page, PageDep, paginate
from core.access import Action, Entity, report_org
from core.business_time import business_today
from documents.reports import CONTENT_TYPES, render
from domain import budgets, maker_checker, periods
from domain import ledger_summary as summary
from domain import reports as domain
from domain.fx import CurrencyCode
from domain.ledger_summary import LedgerSummary
from domain.maker_checker import MakerCheckerOut
from finance import reports as fin
from finance.budget_variance import BudgetVariance
from finance.forecast import CashForecast
from finance.portfolio import Portfolio
from models.budgets import Budget
from models.periods import ClosedPeriod
from models.users import User

router = APIRouter(prefix="/reports", tags=["reports"])

LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout: postings in flight kept the close waiting (domain/periods.py)

ReportReader = Annotated[User, Depends(allowed(Entity.report, Action.read))]
PeriodReader = Annotated[User, Depends(allowed(Entity.accounting_period, Action.read))]
PeriodCloser = Annotated[User, Depends(allowed(Entity.accounting_period, Action.create))]
BudgetReader = Annotated[User, Depends(allowed(Entity.budget, Action.read))]
BudgetWriter = Annotated[User, Depends(allowed(Entity.budget, Action.write))]


class Format(StrEnum):
    json = "json"
    csv = "csv"
    xlsx = "xlsx"
    pdf = "pdf"


_BY_ACCEPT = {"text/csv": Format.csv, CONTENT_TYPES["xlsx"]: Format.xlsx, "application/pdf": Format.pdf}
FILE_RESPONSES: dict = {200: {"content": {media.split(";")[0]: {} for media in CONTENT_TYPES.values()}}}

OrgParam = Annotated[
    uuid.UUID | None,
    Query(description="an organization (bank-wide roles); org staff get their own; bank-wide roles omit it for all"),
]
CurrencyParam = Annotated[CurrencyCode, Query(description="the ledger of one currency (ISO 4217; default USD)")]
FormatParam = Annotated[Format | None, Query(alias="format", description="json (default), csv, xlsx or pdf")]
AcceptHeader = Annotated[
    str | None,
    Header(
        description="text/csv, the XLSX type or application/pdf: a file",
        max_length=1000,
        pattern=r"^[\x20-\x7e]*$",  # visible ASCII and spaces, as media types are
    ),
]


def chosen_format(requested: Format | None, accept: str | None) -> Format:
    """The `format` parameter, else the first file type the Accept header names, else JSON."""
    if requested is not None:
        return requested
    for media in (accept or "").split(","):
        if (found := _BY_ACCEPT.get(media.split(";")[0].strip().lower())) is not None:
            return found
    return Format.json


async def report_scope(session, user: User, org_id: uuid.UUID | None) -> fin.Scope:
    where = await domain.scope(session, report_org(user, org_id))
    if where is None:
        raise not_found("organization", org_id)
    return where


def checked_range(start: date, end: date) -> None:
    if start > end:
        raise AppError(
            422, "invalid_date_range", "from must not be after to", {"from": start.isoformat(), "to": end.isoformat()}
        )


def answer(built: domain.Built, fmt: Format, kind: domain.ReportKind, where: fin.Scope):
    if fmt == Format.json:
        return built.report
    who = f"org-{where.org_id}" if where.org_id else "bank"
    filename = f"{kind.value}-{who}-{built.dated}.{fmt.value}"
    return RawResponse(
        render(built.table, fmt.value),
        media_type=CONTENT_TYPES[fmt.value],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def report(
    session, user: User, settings, org_id: uuid.UUID | None, kind: domain.ReportKind, params: domain.ReportParams
) -> domain.Built:
    """The report of `kind` in the caller's scope (422 invalid_date_range when from is after to)."""
    where = await report_scope(session, user, org_id)
    try:
        return await domain.build(session, where, kind, params, business_today(settings), settings)
    except domain.InvalidRange as exc:
        raise AppError(422, "invalid_date_range", str(exc), {"from": str(exc.start), "to": str(exc.end)}) from exc
    except domain.OptionsNotSupported as exc:
        raise AppError(422, "options_not_supported", str(exc), {"kind": exc.kind.value}) from exc
    except domain.CurrencyNotSupported as exc:
        raise AppError(422, "currency_not_supported", str(exc), {"kind": exc.kind.value}) from exc


@router.get(
    "/trial-balance",
    response_model=fin.TrialBalance,
    responses=FILE_RESPONSES,
    summary="Trial balance as of a date: every ledger line's debit or credit balance; debits = credits",
)
async def trial_balance(
    session: ReadSessionDep,
    user: ReportReader,
    settings: SettingsDep,
    as_of: BusinessDate | None = None,
    org_id: OrgParam = None,
    currency: CurrencyParam = "USD",
    fmt: FormatParam = None,
    accept: AcceptHeader = None,
):
    kind = domain.ReportKind.trial_balance
    built = await report(session, user, settings, org_id, kind, domain.ReportParams(as_of=as_of, currency=currency))
    return answer(built, chosen_format(fmt, accept), kind, built.scope)


@router.get(
    "/balance-sheet",
    response_model=fin.BalanceSheet,
    responses=FILE_RESPONSES,
    summary="Balance sheet as of a date: assets = liabilities + equity (net income to date in equity)",
)
async def balance_sheet(
    session: ReadSessionDep,
    user: ReportReader,
    settings: SettingsDep,
    as_of: BusinessDate | None = None,
    org_id: OrgParam = None,
    currency: CurrencyParam = "USD",
    fmt: FormatParam = None,
    accept: AcceptHeader = None,
):
    kind = domain.ReportKind.balance_sheet
    built = await report(session, user, settings, org_id, kind, domain.ReportParams(as_of=as_of, currency=currency))
    return answer(built, chosen_format(fmt, accept), kind, built.scope)


FromParam = Annotated[BusinessDate | None, Query(alias="from", description="first day (default: 1 January of `to`)")]
ToParam = Annotated[BusinessDate | None, Query(alias="to", description="last day, included (default: today)")]


@router.get(
    "/income-statement",
    response_model=fin.IncomeStatement,
    responses=FILE_RESPONSES,
    summary="Income statement over a period (dates included): income, expenses, net income",
)
async def income_statement(
    session: ReadSessionDep,
    user: ReportReader,
    settings: SettingsDep,
    date_from: FromParam = None,
    date_to: ToParam = None,
    org_id: OrgParam = None,
    currency: CurrencyParam = "USD",
    fmt: FormatParam = None,
    accept: AcceptHeader = None,
):
    kind = domain.ReportKind.income_statement
    params = domain.ReportParams(date_from=date_from, date_to=date_to, currency=currency)
    built = await report(session, user, settings, org_id, kind, params)
    return answer(built, chosen_format(fmt, accept), kind, built.scope)


@router.get(
    "/cash-flow",
    response_model=fin.CashFlowStatement,
    responses=FILE_RESPONSES,
    summary="Cash-flow statement over a period by the indirect method; it reconciles to the change in cash",
)
async def cash_flow(
    session: ReadSessionDep,
    user: ReportReader,
    settings: SettingsDep,
    date_from: FromParam = None,
    date_to: ToParam = None,
    org_id: OrgParam = None,
    currency: CurrencyParam = "USD",
    fmt: FormatParam = None,
    accept: AcceptHeader = None,
):
    kind = domain.ReportKind.cash_flow
    params = domain.ReportParams(date_from=date_from, date_to=date_to, currency=currency)
    built = await report(session, user, settings, org_id, kind, params)
    return answer(built, chosen_format(fmt, accept), kind, built.scope)


@router.get(
    "/loan-portfolio",
    response_model=Portfolio,
    responses=FILE_RESPONSES,
    summary="Loan portfolio as of a date by arrears bucket and product: loans, outstanding principal, provision",
    description="Provision = outstanding principal × the bucket's rate (PROVISIONING_RATES; defaults current 1 %, "
    "1-30 days 5 %, 31-60 20 %, 61-90 50 %, 90+ 100 %). Buckets are the loans' current ones.",
)
async def loan_portfolio(
    session: ReadSessionDep,
    user: ReportReader,
    settings: SettingsDep,
    as_of: BusinessDate | None = None,
    org_id: OrgParam = None,
    fmt: FormatParam = None,
    accept: AcceptHeader = None,
):
    kind = domain.ReportKind.loan_portfolio
    built = await report(session, user, settings, org_id, kind, domain.ReportParams(as_of=as_of))
    return answer(built, chosen_format(fmt, accept), kind, built.scope)


@router.get(
    "/budget-variance",
    response_model=BudgetVariance,
    responses=FILE_RESPONSES,
    summary="Budget variance over a period: each line's actual from the ledger against the budgets of its months",
)
async def budget_variance(
    session: ReadSessionDep,
    user: ReportReader,
    settings: SettingsDep,
    date_from: FromParam = None,
    date_to: ToParam = None,
    org_id: OrgParam = None,
    fmt: FormatParam = None,
    accept: AcceptHeader = None,
):
    kind = domain.ReportKind.budget_variance
    params = domain.ReportParams(date_from=date_from, date_to=date_to)
    built = await report(session, user, settings, org_id, kind, params)
    return answer(built, chosen_format(fmt, accept), kind, built.scope)


@router.get(
    "/ledger-summary",
    response_model=LedgerSummary,
    responses=FILE_RESPONSES,
    summary="Custom ledger summary over a period: debits, credits and net grouped and filtered from a whitelist",
)
async def ledger_summary(
    session: ReadSessionDep,
    user: ReportReader,
    settings: SettingsDep,
    date_from: FromParam = None,
    date_to: ToParam = None,
    group_by: Annotated[
        list[summary.Grouping] | None, Query(description="one to three, in order (default: line)")
    ] = None,
    lines: Annotated[
        list[summary.LineKey] | None, Query(max_length=50, description="only these report lines (GL-CASH, MEMBER-LOAN)")
    ] = None,
    account_types: Annotated[list[summary.AccountType] | None, Query(max_length=4)] = None,
    product_ids: Annotated[
        list[uuid.UUID] | None, Query(max_length=50, description="only these loan or savings products")
    ] = None,
    org_id: OrgParam = None,
    currency: CurrencyParam = "USD",
    fmt: FormatParam = None,
    accept: AcceptHeader = None,
):
    kind = domain.ReportKind.ledger_summary
    if group_by is not None:
        try:
            summary.check_groupings(group_by)
        except ValueError as exc:
            raise AppError(422, "invalid_group_by", str(exc), {"group_by": [g.value for g in group_by]}) from exc
    filters = summary.LedgerFilters(lines=lines, account_types=account_types, product_ids=product_ids)
    params = domain.ReportParams(
        currency=currency,
        date_from=date_from,
        date_to=date_to,
        group_by=group_by,
        filters=None if filters.is_empty() else filters,
    )
    built = await report(session, user, settings, org_id, kind, params)
    return answer(built, chosen_format(fmt, accept), kind, built.scope)


@router.get(
    "/cash-forecast",
    response_model=CashForecast,
    responses=FILE_RESPONSES,
    summary="Cash-flow forecast by week: installments due, auto-pay bills, standing-instruction runs, projected cash",
)
async def cash_forecast(
    session: ReadSessionDep,
    user: ReportReader,
    settings: SettingsDep,
    date_from: Annotated[BusinessDate | None, Query(alias="from", description="the first day (default: today)")] = None,
    weeks: Annotated[int | None, Query(ge=1, le=52, description="the horizon in weeks (default 8)")] = None,
    org_id: OrgParam = None,
    fmt: FormatParam = None,
    accept: AcceptHeader = None,
):
    kind = domain.ReportKind.cash_forecast
    params = domain.ReportParams(date_from=date_from, weeks=weeks)
    built = await report(session, user, settings, org_id, kind, params)
    return answer(built, chosen_format(fmt, accept), kind, built.scope)


# --- budgets -----------------------------------------------------------------------------------------------------

MONTH_PATTERN = r"^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])$"
LINE_PATTERN = r"^[A-Z][A-Z0-9-]{0,39}$"
MonthPath = Annotated[str, Path(pattern=MONTH_PATTERN, description="the month, YYYY-MM", examples=["2026-12"])]
LinePath = Annotated[
    str,
    Path(
        pattern=LINE_PATTERN,
        description="a GL account's code (GL-INTEREST-INCOME) or a member control line (MEMBER-LOAN)",
        examples=["GL-INTEREST-INCOME"],
    ),
]


class BudgetOut(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    line_key: str
    period: str = Field(description="YYYY-MM")
    amount: Decimal
    updated_by: uuid.UUID
    created_at: datetime
    updated_at: datetime | None


def budget_out(row: Budget) -> BudgetOut:
    fields = row.model_dump()
    return BudgetOut(**{**fields, "period": f"{row.period:%Y-%m}"})


class BudgetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_id: uuid.UUID | None = Field(
        default=None, description="the superuser names the organization; org admins: their own"
    )
    amount: MoneyOrZero = Field(description="on the line's normal side, as the statements show it")


@router.put(
    "/budgets/{period}/{line_key}",
    response_model=BudgetOut,
    responses={
        202: {"model": MakerCheckerOut, "description": "a change: it waits on another org admin (maker-checker)"},
        409: {"description": "`budget_change_pending`: another change of this line and month waits on its checker"},
    },
    summary="Set an organization's budget of a report line for a month: a change is approved by a checker first",
)
async def put_budget(
    period: MonthPath,
    line_key: LinePath,
    body: BudgetIn,
    session: SessionDep,
    user: BudgetWriter,
    client: TemporalDep,
    settings: SettingsDep,
):
    """The budget as it stands (200) when it already has this amount; otherwise a maker-checker request (202) that
    sets it once another org admin of the organization approves it in the approvals inbox."""
    org_id = report_org(user, body.org_id)
    if org_id is None:
        raise AppError(422, "org_required", "name the organization (org_id) whose budget this is")
    if await domain.scope(session, org_id) is None:
        raise not_found("organization", org_id)
    await budgets.check_line(session, line_key)
    month = budgets.month(period)
    current = await budgets.current(session, org_id, line_key, month)
    if current is not None and current.amount == body.amount:
        return budget_out(current)
    request = await maker_checker.request_budget_change(
        session, user, client, settings, org_id, line_key, month, body.amount
    )
    return JSONResponse(request.model_dump(mode="json"), status_code=202)


@router.get("/budgets", response_model=Page[BudgetOut], summary="Budgets, by month then line")
async def list_budgets(
    session: ReadSessionDep,
    user: BudgetReader,
    page: PageDep,
    org_id: OrgParam = None,
    line_key: Annotated[str | None, Query(pattern=LINE_PATTERN)] = None,
    period_from: Annotated[str | None, Query(pattern=MONTH_PATTERN, description="first month, YYYY-MM")] = None,
    period_to: Annotated[str | None, Query(pattern=MONTH_PATTERN, description="last month, YYYY-MM")] = None,
):
    first = budgets.month(period_from) if period_from else None
    last = budgets.month(period_to) if period_to else None
    statement = budgets.visible(report_org(user, org_id), line_key, first, last)
    order = [col(Budget.period), col(Budget.line_key), col(Budget.org_id)]
    rows, total = await paginate(session, statement, page, order)
    return Page(items=[budget_out(r) for r in rows], total=total, limit=page.limit, offset=page.offset)


# --- closed accounting periods -----------------------------------------------------------------------------------


class ClosedPeriodOut(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID | None = Field(description="null: closed for the whole bank")
    period_start: date
    period_end: date
    reason: str
    closed_by: uuid.UUID
    closed_at: datetime


class ClosePeriodIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_id: uuid.UUID | None = Field(
        default=None, description="bank-wide roles: an organization, or none for the whole bank; org admins: their own"
    )
    period_start: BusinessDate
    period_end: BusinessDate
    reason: Annotated[str, *line_rules(500, 1)] = Field(examples=["October 2026 books closed"])


@router.get("/periods", response_model=Page[ClosedPeriodOut], summary="Closed accounting periods, latest first")
async def list_periods(session: ReadSessionDep, user: PeriodReader, page: PageDep, org_id: OrgParam = None):
    statement = periods.visible_closures(report_org(user, org_id))
    rows, total = await paginate(
        session, statement, page, [col(ClosedPeriod.period_end).desc(), col(ClosedPeriod.closed_at).desc()]
    )
    items = [ClosedPeriodOut.model_validate(r, from_attributes=True) for r in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/periods",
    response_model=ClosedPeriodOut,
    status_code=201,
    responses={
        200: {"model": ClosedPeriodOut, "description": "already closed: the same closure"},
        202: {
            "model": MakerCheckerOut,
            "description": "an organization's period: a request that closes it once another admin of the "
            "organization approves it (the same request while one for the range waits)",
        },
    },
    summary="Close an accounting period: the database then refuses any posting dated inside it. An organization's "
    "close is maker-checker; a bank-wide one (superuser, bank operations) applies at once",
)
async def close_period(
    body: ClosePeriodIn, session: SessionDep, user: PeriodCloser, settings: SettingsDep, client: TemporalDep
):
    checked_range(body.period_start, body.period_end)
    today = business_today(settings)
    if body.period_end >= today:
        raise AppError(
            422,
            "period_not_ended",
            "only a period that has ended can be closed",
            {"period_end": body.period_end.isoformat(), "business_date": today.isoformat()},
        )
    org_id = report_org(user, body.org_id)
    if await domain.scope(session, org_id) is None:
        raise not_found("organization", org_id)
    if pending := await periods.unposted_interest_months(session, body.period_start, body.period_end):
        raise AppError(
            409,
            "interest_posting_pending",
            "interest accrued in the period is not posted yet: close it after month-end posting",
            {"periods": pending},
        )
    if org_id is not None:
        closed = (
            await session.exec(
                periods.visible_closures(org_id).where(
                    col(ClosedPeriod.org_id) == org_id,
                    ClosedPeriod.period_start == body.period_start,
                    ClosedPeriod.period_end == body.period_end,
                )
            )
        ).first()
        if closed is not None:  # closing again is the same as once
            out = ClosedPeriodOut.model_validate(closed, from_attributes=True)
            return RawResponse(out.model_dump_json(), status_code=200, media_type="application/json")
        request, _ = await maker_checker.request_period_close(
            session, user, client, settings, org_id, body.period_start, body.period_end, body.reason
        )
        return RawResponse(request.model_dump_json(), status_code=202, media_type="application/json")
    try:
        period, created = await periods.close(session, user, org_id, body.period_start, body.period_end, body.reason)
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        raise AppError(
            503, "ledger_busy", "postings are in flight; try again", None, headers={"Retry-After": "5"}
        ) from exc
    await session.commit()
    out = ClosedPeriodOut.model_validate(period, from_attributes=True)
    if created:
        return out
    return RawResponse(out.model_dump_json(), status_code=200, media_type="application/json")
