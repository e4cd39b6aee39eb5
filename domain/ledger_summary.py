"""The custom ledger report ("ledger-summary"): the debits, credits and net of the postings in a period, grouped and
filtered by what the caller picks from a whitelist — never SQL from the client. Each grouping and each filter is a
fixed SQL fragment chosen by name; values reach the database only as bound parameters.

Groupings (one to three, in order): the report line (a GL account's code, or a member control line such as
MEMBER-LOAN, as the statements name them), the account type, the product (a loan's loan product, a savings account's
savings product, '(none)'), the organization, and the month, quarter or year of the entry's effective date.
Filters: report lines (GL codes and member control lines), account types, products.

Scope is the statements' (domain/reports.py): bank-wide every posting; an organization's view its own accounts'
postings and the GL legs of its entries shared with no other organization. Unfiltered and bank-wide, debits equal
credits (`balanced`); a filter or an organization's view of an inter-organization entry leaves one side out."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import BindParameter, bindparam, text
from sqlmodel.ext.asyncio.session import AsyncSession

from finance import reports as fin


class Grouping(StrEnum):
    line = "line"
    account_type = "account_type"
    product = "product"
    organization = "organization"
    month = "month"
    quarter = "quarter"
    year = "year"


class AccountType(StrEnum):
    checking = "checking"
    savings = "savings"
    loan = "loan"
    gl = "gl"  # any GL account


LineKey = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9-]{1,39}$")]

_LINE = "CASE WHEN a.kind = 'gl' THEN a.code ELSE 'MEMBER-' || upper(a.type) END"
_TYPE = "CASE WHEN a.kind = 'gl' THEN 'gl' ELSE a.type END"
_PRODUCT_ID = "coalesce(l.product_id, sa.product_id)"

# The whitelist: a grouping's name is all the client sends; this is the only SQL it selects.
GROUP_SQL: dict[Grouping, str] = {
    Grouping.line: _LINE,
    Grouping.account_type: _TYPE,
    Grouping.product: "coalesce(lp.name, sp.name, '(none)')",
    Grouping.organization: "coalesce(o.name, '(bank)')",
    Grouping.month: "to_char(m.effective_date, 'YYYY-MM')",
    Grouping.quarter: "to_char(m.effective_date, 'YYYY-\"Q\"Q')",
    Grouping.year: "to_char(m.effective_date, 'YYYY')",
}

DEFAULT_GROUPING = [Grouping.line]


class LedgerFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lines: list[LineKey] | None = Field(
        default=None, max_length=50, description="report lines: GL codes (GL-CASH) or member lines (MEMBER-LOAN)"
    )
    account_types: list[AccountType] | None = Field(default=None, max_length=4)
    product_ids: list[uuid.UUID] | None = Field(default=None, max_length=50, description="loan or savings products")

    def is_empty(self) -> bool:
        return not (self.lines or self.account_types or self.product_ids)


def check_groupings(group_by: list[Grouping]) -> list[Grouping]:
    if not 1 <= len(group_by) <= 3:
        raise ValueError("group_by takes one to three groupings")
    if len(set(group_by)) != len(group_by):
        raise ValueError("a grouping appears twice in group_by")
    return group_by


class SummaryRow(BaseModel):
    group: dict[str, str]
    debit: Decimal
    credit: Decimal
    net: Decimal  # debit - credit
    postings: int


class LedgerSummary(BaseModel):
    scope: fin.Scope
    date_from: date
    date_to: date
    group_by: list[Grouping]
    filters: LedgerFilters
    rows: list[SummaryRow]
    total_debit: Decimal
    total_credit: Decimal
    balanced: bool


_DATED = "j.effective_date BETWEEN :start AND :end"

_BANK_LEGS = f"""
    mine AS (
        SELECT p.amount, p.account_id, j.effective_date
        FROM postings p JOIN journal_entries j ON j.id = p.entry_id
        WHERE {_DATED}
    )"""

_ORG_LEGS = f"""
    org_entries AS (
        SELECT DISTINCT p.entry_id
        FROM ledger_accounts a
        JOIN postings p ON p.account_id = a.id
        JOIN journal_entries j ON j.id = p.entry_id
        WHERE a.org_id = :org AND {_DATED}
    ), legs AS (
        SELECT p.amount, p.account_id, j.effective_date, a.kind, a.org_id,
               bool_or(a.kind = 'internal' AND a.org_id IS DISTINCT FROM :org) OVER (PARTITION BY p.entry_id) AS shared
        FROM org_entries e
        JOIN postings p ON p.entry_id = e.entry_id
        JOIN journal_entries j ON j.id = p.entry_id
        JOIN ledger_accounts a ON a.id = p.account_id
    ), mine AS (
        SELECT amount, account_id, effective_date FROM legs
        WHERE org_id = :org OR (kind = 'gl' AND org_id IS NULL AND NOT shared)
    )"""


def _statement(org_id: uuid.UUID | None, group_by: list[Grouping], filters: LedgerFilters):
    keys = [f"{GROUP_SQL[g]} AS g{i}" for i, g in enumerate(group_by)]
    where: list[str] = ["a.currency = :currency"]  # an entry is in one currency: so is the report
    params: list[BindParameter] = []
    if filters.lines:
        where.append(f"{_LINE} IN :lines")
        params.append(bindparam("lines", expanding=True))
    if filters.account_types:
        where.append(f"{_TYPE} IN :types")
        params.append(bindparam("types", expanding=True))
    if filters.product_ids:
        where.append(f"{_PRODUCT_ID} IN :products")
        params.append(bindparam("products", expanding=True))
    positions = ", ".join(str(i + 1) for i in range(len(group_by)))
    sql = f"""
        WITH {_ORG_LEGS if org_id is not None else _BANK_LEGS}
        SELECT {", ".join(keys)},
               coalesce(sum(m.amount) FILTER (WHERE m.amount > 0), 0) AS debit,
               coalesce(-sum(m.amount) FILTER (WHERE m.amount < 0), 0) AS credit,
               count(*) AS postings
        FROM mine m
        JOIN ledger_accounts a ON a.id = m.account_id
        LEFT JOIN organizations o ON o.id = a.org_id
        LEFT JOIN loans l ON l.loan_account_id = a.id
        LEFT JOIN loan_products lp ON lp.id = l.product_id
        LEFT JOIN savings_accounts sa ON sa.account_id = a.id
        LEFT JOIN savings_products sp ON sp.id = sa.product_id
        WHERE {" AND ".join(where)}
        GROUP BY {positions}
        ORDER BY {positions}
    """
    return text(sql).bindparams(*params)


async def ledger_summary(
    session: AsyncSession,
    where: fin.Scope,
    start: date,
    end: date,
    group_by: list[Grouping],
    filters: LedgerFilters,
) -> LedgerSummary:
    values: dict = {"start": start, "end": end, "currency": where.currency}
    if where.org_id is not None:
        values["org"] = where.org_id
    if filters.lines:
        values["lines"] = list(filters.lines)
    if filters.account_types:
        values["types"] = [t.value for t in filters.account_types]
    if filters.product_ids:
        values["products"] = list(filters.product_ids)
    result = await session.execute(_statement(where.org_id, group_by, filters), values)
    rows = []
    for r in result:
        debit, credit = Decimal(r.debit), Decimal(r.credit)
        group = {g.value: str(getattr(r, f"g{i}")) for i, g in enumerate(group_by)}
        rows.append(SummaryRow(group=group, debit=debit, credit=credit, net=debit - credit, postings=r.postings))
    total_debit = sum((r.debit for r in rows), Decimal("0.00"))
    total_credit = sum((r.credit for r in rows), Decimal("0.00"))
    return LedgerSummary(
        scope=where,
        date_from=start,
        date_to=end,
        group_by=group_by,
        filters=filters,
        rows=rows,
        total_debit=total_debit,
        total_credit=total_credit,
        balanced=total_debit == total_credit,
    )


def ledger_summary_table(report: LedgerSummary) -> fin.ReportTable:
    rows = [fin.TableRow(label=" / ".join(r.group.values()), values=[r.debit, r.credit, r.net]) for r in report.rows]
    total_net = report.total_debit - report.total_credit
    rows.append(fin.TableRow(label="Total", values=[report.total_debit, report.total_credit, total_net], style="total"))
    by = ", ".join(g.value.replace("_", " ") for g in report.group_by)
    return fin.ReportTable(
        title="Ledger summary",
        subtitle=f"{report.scope.name}, {report.date_from} to {report.date_to}, by {by}",
        columns=["Debit", "Credit", "Net"],
        rows=rows,
    )
