"""Financial statements assembled from ledger lines (pure: domain/reports.py reads the lines by set-based SQL).

A *line* is one row of the chart the reports show: a GL account by its code, or the member accounts of one type
summed into one control line (the sub-ledger: `MEMBER-CHECKING`, `MEMBER-SAVINGS`, `MEMBER-LOAN`), or, in an
organization's view, `INTER-ORG` (what the organization's side of entries shared with other organizations leaves
unbalanced: see domain/reports.py). Its amount is the net of its postings, debit positive, credit negative.

Signs on the statements: assets and expenses are shown debit positive; liabilities, equity and income credit
positive. The ledger posts no closing entries, so equity is the income and expenses accumulated to the date: the
balance sheet shows it as retained earnings (before the year of `as_of`) and the current year's net income, and
assets = liabilities + equity holds because every entry balances.

The cash-flow statement is the indirect method: net income, then each non-cash line's movement over the period
(an asset's increase uses cash, a liability's increase brings it), in operating, investing (loans) or financing
(member deposits, equity) sections; the sum is the change of the cash lines, which the statement checks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel

ZERO = Decimal("0.00")

CASH_LINES = frozenset({"GL-CASH"})  # cash and cash equivalents: the bank's cash at its correspondent bank
LOAN_LINES = frozenset({"GL-LOAN-RECEIVABLE", "MEMBER-LOAN"})  # lending: investing activities
INTER_ORG = "INTER-ORG"
RETAINED_EARNINGS = "RETAINED-EARNINGS"
CURRENT_EARNINGS = "CURRENT-EARNINGS"


class Category(StrEnum):
    asset = "asset"
    liability = "liability"
    equity = "equity"
    income = "income"
    expense = "expense"
    inter_org = "inter_org"  # due from (debit) or to (credit) other organizations


DEBIT_NORMAL = frozenset({Category.asset, Category.expense, Category.inter_org})
MEMBER_LINES = {
    "checking": ("MEMBER-CHECKING", "Member deposits: checking", Category.liability),
    "savings": ("MEMBER-SAVINGS", "Member deposits: savings", Category.liability),
    "loan": ("MEMBER-LOAN", "Loans to members", Category.asset),
}


class Line(BaseModel):
    key: str
    name: str
    category: Category
    amount: Decimal  # net of the postings: debit positive


def classify(kind: str, code: str | None, account_type: str, name: str, amount: Decimal) -> Line:
    """The report line of a ledger row: a GL account stands for itself (its type is its category); member accounts
    of one type make one control line."""
    if kind == "gl":
        return Line(key=code or name, name=name, category=Category(account_type), amount=amount)
    if kind == INTER_ORG:
        return Line(key=INTER_ORG, name="Due from (to) other organizations", category=Category.inter_org, amount=amount)
    key, title, category = MEMBER_LINES[account_type]
    return Line(key=key, name=title, category=category, amount=amount)


def _order(line: Line) -> tuple[int, str]:
    return list(Category).index(line.category), line.key


def shown_amount(line: Line) -> Decimal:
    """The line's amount as the statements show it: on its normal side, positive."""
    return line.amount if line.category in DEBIT_NORMAL else -line.amount


def _total(amounts: Iterable[Decimal]) -> Decimal:
    return sum(amounts, ZERO)


def net_income(lines: Iterable[Line]) -> Decimal:
    """Income less expenses: the negated net of the income and expense lines."""
    return -_total(line.amount for line in lines if line.category in (Category.income, Category.expense))


class Scope(BaseModel):
    org_id: uuid.UUID | None  # None: the whole bank
    name: str
    currency: str = "USD"  # a report reads the accounts of one currency (an entry is in one currency)


class Row(BaseModel):
    key: str
    name: str
    amount: Decimal


class TrialBalanceRow(BaseModel):
    key: str
    name: str
    category: Category
    debit: Decimal
    credit: Decimal


class TrialBalance(BaseModel):
    scope: Scope
    as_of: date
    rows: list[TrialBalanceRow]
    total_debit: Decimal
    total_credit: Decimal
    balanced: bool


class BalanceSheet(BaseModel):
    scope: Scope
    as_of: date
    assets: list[Row]
    liabilities: list[Row]
    equity: list[Row]
    total_assets: Decimal
    total_liabilities: Decimal
    total_equity: Decimal
    balanced: bool  # assets = liabilities + equity


class IncomeStatement(BaseModel):
    scope: Scope
    date_from: date
    date_to: date
    income: list[Row]
    expenses: list[Row]
    total_income: Decimal
    total_expenses: Decimal
    net_income: Decimal


class CashFlowStatement(BaseModel):
    scope: Scope
    date_from: date
    date_to: date
    net_income: Decimal
    operating: list[Row]  # adjustments to net income
    investing: list[Row]
    financing: list[Row]
    net_operating: Decimal
    net_investing: Decimal
    net_financing: Decimal
    net_change: Decimal
    opening_cash: Decimal
    closing_cash: Decimal
    reconciles: bool  # opening cash + net change = closing cash


def trial_balance(scope: Scope, as_of: date, lines: list[Line]) -> TrialBalance:
    rows = [
        TrialBalanceRow(
            key=line.key,
            name=line.name,
            category=line.category,
            debit=line.amount if line.amount > 0 else ZERO,
            credit=-line.amount if line.amount < 0 else ZERO,
        )
        for line in sorted(lines, key=_order)
        if line.amount != 0
    ]
    debit, credit = _total(r.debit for r in rows), _total(r.credit for r in rows)
    return TrialBalance(
        scope=scope, as_of=as_of, rows=rows, total_debit=debit, total_credit=credit, balanced=debit == credit
    )


def _rows(lines: Iterable[Line]) -> list[Row]:
    return [Row(key=line.key, name=line.name, amount=shown_amount(line)) for line in sorted(lines, key=_order)]


def balance_sheet(scope: Scope, as_of: date, lines: list[Line], current_year_income: Decimal) -> BalanceSheet:
    """`lines`: the balances at `as_of`; `current_year_income`: the net income from 1 January of its year to it."""
    inter_org = [line for line in lines if line.category == Category.inter_org and line.amount != 0]
    assets = [line for line in lines if line.category == Category.asset and line.amount != 0]
    liabilities = [line for line in lines if line.category == Category.liability and line.amount != 0]
    # Owed to other organizations (a credit balance) is a liability; owed by them an asset.
    assets += [line for line in inter_org if line.amount > 0]
    liabilities += [line for line in inter_org if line.amount < 0]
    liabilities = [line.model_copy(update={"category": Category.liability}) for line in liabilities]
    equity = _rows(line for line in lines if line.category == Category.equity and line.amount != 0)
    accumulated = net_income(lines)
    equity += [
        Row(key=RETAINED_EARNINGS, name="Retained earnings", amount=accumulated - current_year_income),
        Row(key=CURRENT_EARNINGS, name=f"Net income of {as_of.year} to date", amount=current_year_income),
    ]
    asset_rows, liability_rows = _rows(assets), _rows(liabilities)
    total_assets = _total(r.amount for r in asset_rows)
    total_liabilities = _total(r.amount for r in liability_rows)
    total_equity = _total(r.amount for r in equity)
    return BalanceSheet(
        scope=scope,
        as_of=as_of,
        assets=asset_rows,
        liabilities=liability_rows,
        equity=equity,
        total_assets=total_assets,
        total_liabilities=total_liabilities,
        total_equity=total_equity,
        balanced=total_assets == total_liabilities + total_equity,
    )


def income_statement(scope: Scope, date_from: date, date_to: date, movements: list[Line]) -> IncomeStatement:
    """`movements`: each line's net postings dated from `date_from` to `date_to`."""
    income = _rows(line for line in movements if line.category == Category.income and line.amount != 0)
    expenses = _rows(line for line in movements if line.category == Category.expense and line.amount != 0)
    total_income, total_expenses = _total(r.amount for r in income), _total(r.amount for r in expenses)
    return IncomeStatement(
        scope=scope,
        date_from=date_from,
        date_to=date_to,
        income=income,
        expenses=expenses,
        total_income=total_income,
        total_expenses=total_expenses,
        net_income=total_income - total_expenses,
    )


def _section(line: Line) -> str | None:
    """Where a line's movement goes on the cash-flow statement; None for cash itself and for income and expenses
    (they are in net income)."""
    if line.key in CASH_LINES or line.category in (Category.income, Category.expense):
        return None
    if line.key in LOAN_LINES:
        return "investing"
    if line.category in (Category.liability, Category.equity):
        return "financing"
    return "operating"  # other assets (ACH clearing: money in settlement) and inter-organization balances


def _flow_name(line: Line, cash_effect: Decimal) -> str:
    if line.key in LOAN_LINES:
        return f"{line.name}: {'repaid, net' if cash_effect >= 0 else 'disbursed, net'}"
    change = "increase" if (cash_effect > 0) == (line.category not in DEBIT_NORMAL) else "decrease"
    return f"{line.name}: {change}"


def cash_flow(
    scope: Scope, date_from: date, date_to: date, movements: list[Line], opening_cash: Decimal
) -> CashFlowStatement:
    """`movements`: each line's net postings over the period; `opening_cash`: the cash lines' balance the day
    before `date_from`. A non-cash line's movement m changes cash by -m (every entry balances)."""
    sections: dict[str, list[Row]] = {"operating": [], "investing": [], "financing": []}
    for line in sorted(movements, key=_order):
        section = _section(line)
        if section is None or line.amount == 0:
            continue
        sections[section].append(Row(key=line.key, name=_flow_name(line, -line.amount), amount=-line.amount))
    income = net_income(movements)
    net_operating = income + _total(r.amount for r in sections["operating"])
    net_investing = _total(r.amount for r in sections["investing"])
    net_financing = _total(r.amount for r in sections["financing"])
    net_change = net_operating + net_investing + net_financing
    cash_movement = _total(line.amount for line in movements if line.key in CASH_LINES)
    return CashFlowStatement(
        scope=scope,
        date_from=date_from,
        date_to=date_to,
        net_income=income,
        operating=sections["operating"],
        investing=sections["investing"],
        financing=sections["financing"],
        net_operating=net_operating,
        net_investing=net_investing,
        net_financing=net_financing,
        net_change=net_change,
        opening_cash=opening_cash,
        closing_cash=opening_cash + cash_movement,
        reconciles=net_change == cash_movement,
    )


# --- one table shape for every renderer (documents/reports.py) ---------------------------------------------------


class TableRow(BaseModel):
    label: str
    values: list[Decimal | None]
    style: str = "line"  # line, heading or total


class ReportTable(BaseModel):
    title: str
    subtitle: str
    columns: list[str]  # the value columns' headers (the label column is first, unnamed)
    rows: list[TableRow]


def _scope_text(scope: Scope) -> str:
    return scope.name


def _block(heading: str, rows: list[Row], total_label: str, total: Decimal) -> list[TableRow]:
    return [
        TableRow(label=heading, values=[None], style="heading"),
        *(TableRow(label=f"{r.name} ({r.key})", values=[r.amount]) for r in rows),
        TableRow(label=total_label, values=[total], style="total"),
    ]


def trial_balance_table(report: TrialBalance) -> ReportTable:
    rows = [TableRow(label=f"{r.name} ({r.key})", values=[r.debit, r.credit]) for r in report.rows]
    rows.append(TableRow(label="Total", values=[report.total_debit, report.total_credit], style="total"))
    return ReportTable(
        title="Trial balance",
        subtitle=f"{_scope_text(report.scope)}, as of {report.as_of}",
        columns=["Debit", "Credit"],
        rows=rows,
    )


def balance_sheet_table(report: BalanceSheet) -> ReportTable:
    rows = [
        *_block("Assets", report.assets, "Total assets", report.total_assets),
        *_block("Liabilities", report.liabilities, "Total liabilities", report.total_liabilities),
        *_block("Equity", report.equity, "Total equity", report.total_equity),
        TableRow(
            label="Total liabilities and equity",
            values=[report.total_liabilities + report.total_equity],
            style="total",
        ),
    ]
    return ReportTable(
        title="Balance sheet",
        subtitle=f"{_scope_text(report.scope)}, as of {report.as_of}",
        columns=["Amount"],
        rows=rows,
    )


def income_statement_table(report: IncomeStatement) -> ReportTable:
    rows = [
        *_block("Income", report.income, "Total income", report.total_income),
        *_block("Expenses", report.expenses, "Total expenses", report.total_expenses),
        TableRow(label="Net income", values=[report.net_income], style="total"),
    ]
    return ReportTable(
        title="Income statement",
        subtitle=f"{_scope_text(report.scope)}, {report.date_from} to {report.date_to}",
        columns=["Amount"],
        rows=rows,
    )


def cash_flow_table(report: CashFlowStatement) -> ReportTable:
    rows = [
        TableRow(label="Operating activities", values=[None], style="heading"),
        TableRow(label="Net income", values=[report.net_income]),
        *(TableRow(label=f"{r.name} ({r.key})", values=[r.amount]) for r in report.operating),
        TableRow(label="Net cash from operating activities", values=[report.net_operating], style="total"),
        *_block("Investing activities", report.investing, "Net cash from investing activities", report.net_investing),
        *_block("Financing activities", report.financing, "Net cash from financing activities", report.net_financing),
        TableRow(label="Net change in cash", values=[report.net_change], style="total"),
        TableRow(label="Cash at the beginning of the period", values=[report.opening_cash]),
        TableRow(label="Cash at the end of the period", values=[report.closing_cash], style="total"),
    ]
    return ReportTable(
        title="Cash-flow statement (indirect method)",
        subtitle=f"{_scope_text(report.scope)}, {report.date_from} to {report.date_to}",
        columns=["Amount"],
        rows=rows,
    )
