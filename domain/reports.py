"""Financial reports read from the ledger by set-based SQL: one aggregate per report line, never a loop over
accounts or entries. The statements themselves are assembled by finance/reports.py (pure).

Scope. The bank-wide view sums every posting. An organization's view holds the entries that touch at least one of
its accounts, and of those entries:
* the postings to the organization's own accounts (its members' deposits and loans, its own accounts);
* the postings to the GL accounts, which are the bank's and have no organization (cash, ACH clearing, interest and
  fee income and expense), when the entry touches no other organization's account: a deposit's cash, a member's
  interest, a loan's interest income are then the organization's share of the bank's books;
* for an entry shared with another organization (a transfer between two of them), the GL legs are left out (they
  cannot be split without a rule the ledger does not hold) and what remains unbalanced goes to one line, INTER-ORG
  (due from / to other organizations), so each organization's trial balance and balance sheet still balance.
Entries that touch only GL accounts belong to the bank-wide view alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from core.config import Settings, get_settings
from domain import ledger_summary as summary
from domain import report_sources as sources
from domain.fx import CurrencyCode
from finance import budget_variance as budgets
from finance import forecast
from finance import portfolio as loans
from finance import reports as fin
from models.users import Organization

BANK_WIDE = "All organizations (bank-wide)"
CENT = Decimal("0.01")

_DATED = "j.effective_date <= :end AND (CAST(:start AS date) IS NULL OR j.effective_date >= CAST(:start AS date))"

_BANK_LINES = text(f"""
    SELECT a.kind, CASE WHEN a.kind = 'gl' THEN a.code END AS code, a.type, min(a.name) AS name,
           sum(p.amount) AS amount
    FROM postings p
    JOIN journal_entries j ON j.id = p.entry_id
    JOIN ledger_accounts a ON a.id = p.account_id
    WHERE {_DATED} AND a.currency = :currency
    GROUP BY a.kind, CASE WHEN a.kind = 'gl' THEN a.code END, a.type
""")

_ORG_LINES = text(f"""
    WITH org_entries AS (
        SELECT DISTINCT p.entry_id
        FROM ledger_accounts a
        JOIN postings p ON p.account_id = a.id
        JOIN journal_entries j ON j.id = p.entry_id
        WHERE a.org_id = :org AND a.currency = :currency AND {_DATED}
    ), legs AS (
        SELECT p.amount, a.kind, a.code, a.type, a.name, a.org_id,
               bool_or(a.kind = 'internal' AND a.org_id IS DISTINCT FROM :org) OVER (PARTITION BY p.entry_id) AS shared
        FROM org_entries e
        JOIN postings p ON p.entry_id = e.entry_id
        JOIN ledger_accounts a ON a.id = p.account_id
    ), mine AS (
        SELECT * FROM legs WHERE org_id = :org OR (kind = 'gl' AND org_id IS NULL AND NOT shared)
    )
    SELECT kind, CASE WHEN kind = 'gl' THEN code END AS code, type, min(name) AS name, sum(amount) AS amount
    FROM mine
    GROUP BY kind, CASE WHEN kind = 'gl' THEN code END, type
    UNION ALL
    SELECT 'INTER-ORG', NULL, 'inter_org', 'Inter-organization', -sum(amount)
    FROM mine WHERE shared
    HAVING count(*) > 0
""")


async def lines(session: AsyncSession, where: fin.Scope, start: date | None, end: date) -> list[fin.Line]:
    """Each report line's net postings dated from `start` (None: from the beginning) to `end`, both included, on the
    accounts of the scope's currency (every leg of an entry is in one currency: migration 0047)."""
    org_id = where.org_id
    params: dict = {"start": start, "end": end, "currency": where.currency}
    if org_id is not None:
        params["org"] = org_id
    rows = await session.execute(_ORG_LINES if org_id is not None else _BANK_LINES, params)
    return [
        fin.classify(r.kind, r.code, r.type, r.name, Decimal(r.amount).quantize(CENT))
        for r in rows
        if r.amount is not None
    ]


async def scope(session: AsyncSession, org_id: uuid.UUID | None) -> fin.Scope | None:
    """The report's scope; None for an organization that does not exist."""
    if org_id is None:
        return fin.Scope(org_id=None, name=BANK_WIDE)
    org = await session.get(Organization, org_id)
    return fin.Scope(org_id=org.id, name=org.name) if org else None


async def trial_balance(session: AsyncSession, where: fin.Scope, as_of: date) -> fin.TrialBalance:
    return fin.trial_balance(where, as_of, await lines(session, where, None, as_of))


async def balance_sheet(session: AsyncSession, where: fin.Scope, as_of: date) -> fin.BalanceSheet:
    balances = await lines(session, where, None, as_of)
    this_year = await lines(session, where, date(as_of.year, 1, 1), as_of)
    return fin.balance_sheet(where, as_of, balances, fin.net_income(this_year))


async def income_statement(session: AsyncSession, where: fin.Scope, start: date, end: date) -> fin.IncomeStatement:
    return fin.income_statement(where, start, end, await lines(session, where, start, end))


async def cash_flow(session: AsyncSession, where: fin.Scope, start: date, end: date) -> fin.CashFlowStatement:
    movements = await lines(session, where, start, end)
    before = await lines(session, where, None, start - timedelta(days=1))
    opening = sum((line.amount for line in before if line.key in fin.CASH_LINES), fin.ZERO)
    return fin.cash_flow(where, start, end, movements, opening)


# --- every report by kind: what the endpoints, report runs and scheduled definitions share ------------------------


class ReportKind(StrEnum):
    trial_balance = "trial-balance"
    balance_sheet = "balance-sheet"
    income_statement = "income-statement"
    cash_flow = "cash-flow"
    loan_portfolio = "loan-portfolio"
    budget_variance = "budget-variance"
    cash_forecast = "cash-forecast"
    ledger_summary = "ledger-summary"  # the custom one: groupings and filters from a whitelist


DEFAULT_FORECAST_WEEKS = 8


class ReportParams(BaseModel):
    """A report's dates: `as_of` for a position (trial balance, balance sheet, loan portfolio), `date_from`..`date_to`
    for a period (both included; `date_from` defaults to 1 January of `date_to`; budget variance too). The cash-flow
    forecast starts on `date_from` and runs `weeks` weeks. Unset dates are the business day of the run."""

    model_config = ConfigDict(extra="forbid")
    as_of: date | None = None
    date_from: date | None = None
    date_to: date | None = None
    weeks: int | None = Field(default=None, ge=1, le=52, description="cash-flow forecast: its horizon in weeks")
    group_by: list[summary.Grouping] | None = Field(
        default=None, description="ledger summary only: one to three groupings, in order (default: line)"
    )
    filters: summary.LedgerFilters | None = Field(default=None, description="ledger summary only")
    currency: CurrencyCode | None = Field(default=None, description="the accounts of one currency (default USD)")

    @field_validator("group_by")
    @classmethod
    def _groupings(cls, value: list[summary.Grouping] | None) -> list[summary.Grouping] | None:
        return None if value is None else summary.check_groupings(value)


class Built(BaseModel):
    """A report, its table for the file formats, and the dates that name its file."""

    scope: fin.Scope
    report: BaseModel
    table: fin.ReportTable
    dated: str


# A builder gets the Settings of the process that runs it (provisioning rates, business time zone): the API's or the
# worker's, never read from the environment behind their back.
Builder = Callable[[AsyncSession, fin.Scope, ReportParams, date, Settings], Awaitable[Built]]


# Loans, budgets and the forecast's sources are in US dollars: these reports have no other currency.
USD_ONLY = frozenset({ReportKind.loan_portfolio, ReportKind.budget_variance, ReportKind.cash_forecast})


class CurrencyNotSupported(ValueError):
    def __init__(self, kind: ReportKind, currency: str):
        super().__init__(f"{kind.value} is in US dollars alone (loans, budgets and forecasts are), not {currency}")
        self.kind, self.currency = kind, currency


class OptionsNotSupported(ValueError):
    """Groupings or filters asked of a report other than the ledger summary."""

    def __init__(self, kind: ReportKind):
        super().__init__(f"group_by and filters go with the ledger-summary report, not {kind.value}")
        self.kind = kind


class InvalidRange(ValueError):
    def __init__(self, start: date, end: date):
        super().__init__("from must not be after to")
        self.start, self.end = start, end


def period(params: ReportParams, today: date) -> tuple[date, date]:
    """[from, to] of a period report; InvalidRange when from is after to."""
    end = params.date_to or today
    start = params.date_from or date(end.year, 1, 1)
    if start > end:
        raise InvalidRange(start, end)
    return start, end


async def _trial_balance(
    session: AsyncSession, where: fin.Scope, params: ReportParams, today: date, settings: Settings
) -> Built:
    report = await trial_balance(session, where, day := params.as_of or today)
    return Built(scope=where, report=report, table=fin.trial_balance_table(report), dated=str(day))


async def _balance_sheet(
    session: AsyncSession, where: fin.Scope, params: ReportParams, today: date, settings: Settings
) -> Built:
    report = await balance_sheet(session, where, day := params.as_of or today)
    return Built(scope=where, report=report, table=fin.balance_sheet_table(report), dated=str(day))


async def _income_statement(
    session: AsyncSession, where: fin.Scope, params: ReportParams, today: date, settings: Settings
) -> Built:
    start, end = period(params, today)
    report = await income_statement(session, where, start, end)
    return Built(scope=where, report=report, table=fin.income_statement_table(report), dated=f"{start}-to-{end}")


async def _cash_flow(
    session: AsyncSession, where: fin.Scope, params: ReportParams, today: date, settings: Settings
) -> Built:
    start, end = period(params, today)
    report = await cash_flow(session, where, start, end)
    return Built(scope=where, report=report, table=fin.cash_flow_table(report), dated=f"{start}-to-{end}")


async def loan_portfolio(session: AsyncSession, where: fin.Scope, as_of: date, settings: Settings) -> loans.Portfolio:
    rates = loans.rates_or_default(settings.provisioning_rates)
    return loans.portfolio(where, as_of, await sources.portfolio_groups(session, where.org_id, as_of), rates)


async def budget_variance(session: AsyncSession, where: fin.Scope, start: date, end: date) -> budgets.BudgetVariance:
    """The period's actuals (the lines the income statement reads) against the budgets of the months it touches."""
    months = budgets.months_between(start, end)
    planned = await sources.budgets_by_line(session, where.org_id, months[0], months[-1])
    actuals = await lines(session, where, start, end)
    names = [f"{m:%Y-%m}" for m in months]
    return budgets.budget_variance(where, start, end, names, actuals, planned)


async def cash_forecast(
    session: AsyncSession, where: fin.Scope, first: date, weeks: int, settings: Settings
) -> forecast.CashForecast:
    before = await lines(session, where, None, first - timedelta(days=1))
    opening = sum((line.amount for line in before if line.key in fin.CASH_LINES), fin.ZERO)
    runs: dict[str, list[tuple[Decimal, list[int]]]] = {"book": [], "ach_debit": [], "ach_credit": []}
    for kind, amount, cadence in await sources.standing_cadences(session, where.org_id, datetime.now(UTC)):
        weekly = forecast.runs_per_week(
            cadence,
            first,
            weeks,
            datetime.now(UTC),
            ZoneInfo(settings.business_timezone),
            settings.standing_instruction_hour,
        )
        runs[kind].append((amount, weekly))
    return forecast.cash_forecast(
        where,
        first,
        weeks,
        opening,
        await sources.installments_by_week(session, where.org_id, first, weeks),
        await sources.autopay_bills_by_week(session, where.org_id, first, weeks),
        runs["book"],
        ach_in=runs["ach_debit"],
        ach_out=runs["ach_credit"],
    )


async def _loan_portfolio(
    session: AsyncSession, where: fin.Scope, params: ReportParams, today: date, settings: Settings
) -> Built:
    report = await loan_portfolio(session, where, day := params.as_of or today, settings)
    return Built(scope=where, report=report, table=loans.portfolio_table(report), dated=str(day))


async def _budget_variance(
    session: AsyncSession, where: fin.Scope, params: ReportParams, today: date, settings: Settings
) -> Built:
    start, end = period(params, today)
    report = await budget_variance(session, where, start, end)
    return Built(scope=where, report=report, table=budgets.budget_variance_table(report), dated=f"{start}-to-{end}")


async def _cash_forecast(
    session: AsyncSession, where: fin.Scope, params: ReportParams, today: date, settings: Settings
) -> Built:
    first, weeks = params.date_from or today, params.weeks or DEFAULT_FORECAST_WEEKS
    report = await cash_forecast(session, where, first, weeks, settings)
    return Built(scope=where, report=report, table=forecast.cash_forecast_table(report), dated=f"{first}-{weeks}w")


async def _ledger_summary(
    session: AsyncSession, where: fin.Scope, params: ReportParams, today: date, settings: Settings
) -> Built:
    start, end = period(params, today)
    group_by = params.group_by or summary.DEFAULT_GROUPING
    filters = params.filters or summary.LedgerFilters()
    report = await summary.ledger_summary(session, where, start, end, group_by, filters)
    return Built(scope=where, report=report, table=summary.ledger_summary_table(report), dated=f"{start}-to-{end}")


BUILDERS: dict[ReportKind, Builder] = {
    ReportKind.trial_balance: _trial_balance,
    ReportKind.balance_sheet: _balance_sheet,
    ReportKind.income_statement: _income_statement,
    ReportKind.cash_flow: _cash_flow,
    ReportKind.loan_portfolio: _loan_portfolio,
    ReportKind.budget_variance: _budget_variance,
    ReportKind.cash_forecast: _cash_forecast,
    ReportKind.ledger_summary: _ledger_summary,
}


async def build(
    session: AsyncSession,
    where: fin.Scope,
    kind: ReportKind,
    params: ReportParams,
    today: date,
    settings: Settings | None = None,
) -> Built:
    """The report of `kind` for `where`: one entry point for every kind (a new report adds its builder above).
    `settings`: the caller's (default: the environment's). OptionsNotSupported for groupings or filters asked of
    another kind than the ledger summary."""
    if kind != ReportKind.ledger_summary and (params.group_by or params.filters):
        raise OptionsNotSupported(kind)
    currency = params.currency or "USD"
    if kind in USD_ONLY and currency != "USD":
        raise CurrencyNotSupported(kind, currency)
    where = where.model_copy(update={"currency": currency})
    return await BUILDERS[kind](session, where, params, today, settings or get_settings())
