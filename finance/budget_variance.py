"""Budget variance: each report line's actual over a period against its budget (pure; the actuals are the ledger
lines of domain/reports.py, the budgets the `budgets` rows of the months the period covers).

Amounts are on the line's normal side, as the statements show them (income and liabilities credit positive,
expenses and assets debit positive), and so are budgets. Variance = actual - budget; variance % = variance over the
budget, to two decimals (none when the budget is zero). A line with a budget and no postings has an actual of zero;
an income or expense line with postings and no budget has a budget of zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from pydantic import BaseModel

from finance.money import round_money
from finance.reports import Category, Line, ReportTable, Scope, TableRow, shown_amount

ZERO = Decimal("0.00")
HUNDRED = Decimal(100)


class VarianceRow(BaseModel):
    key: str
    name: str
    category: Category | None  # None: a budgeted line that has no postings in the scope yet
    actual: Decimal
    budget: Decimal
    variance: Decimal
    variance_percent: Decimal | None


class BudgetVariance(BaseModel):
    scope: Scope
    date_from: date
    date_to: date
    months: list[str]  # YYYY-MM: the budget months the period covers
    rows: list[VarianceRow]
    total_actual: Decimal
    total_budget: Decimal


def variance_percent(actual: Decimal, budget: Decimal) -> Decimal | None:
    return None if budget == 0 else round_money((actual - budget) * HUNDRED / budget)


def budget_variance(
    scope: Scope, date_from: date, date_to: date, months: list[str], actuals: list[Line], budgets: Mapping[str, Decimal]
) -> BudgetVariance:
    """`actuals`: each line's net postings over the period; `budgets`: each line key's budget over its months."""
    by_key = {line.key: line for line in actuals}
    keys = set(budgets) | {
        line.key for line in actuals if line.category in (Category.income, Category.expense) and line.amount != 0
    }
    rows = []
    for key in keys:
        line = by_key.get(key)
        actual = shown_amount(line) if line else ZERO
        budget = budgets.get(key, ZERO)
        rows.append(
            VarianceRow(
                key=key,
                name=line.name if line else key,
                category=line.category if line else None,
                actual=actual,
                budget=budget,
                variance=actual - budget,
                variance_percent=variance_percent(actual, budget),
            )
        )
    order = list(Category)
    rows.sort(key=lambda r: (order.index(r.category) if r.category else len(order), r.key))
    return BudgetVariance(
        scope=scope,
        date_from=date_from,
        date_to=date_to,
        months=months,
        rows=rows,
        total_actual=sum((r.actual for r in rows), ZERO),
        total_budget=sum((r.budget for r in rows), ZERO),
    )


def months_between(start: date, end: date) -> list[date]:
    """The first day of every month from `start`'s to `end`'s, both included."""
    months, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def budget_variance_table(report: BudgetVariance) -> ReportTable:
    rows = [
        TableRow(label=f"{r.name} ({r.key})", values=[r.actual, r.budget, r.variance, r.variance_percent])
        for r in report.rows
    ]
    return ReportTable(
        title="Budget variance",
        subtitle=f"{report.scope.name}, {report.date_from} to {report.date_to}",
        columns=["Actual", "Budget", "Variance", "Variance %"],
        rows=rows,
    )
