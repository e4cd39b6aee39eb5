"""What the loan portfolio, budget variance and cash-flow forecast reports read, by set-based SQL (one aggregate per
report, never a loop over loans or bills); finance/portfolio.py, finance/budget_variance.py and finance/forecast.py
assemble them. `org` None is the whole bank; otherwise the organization's loans, budgets, bills and instructions."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from finance.forecast import Cadence
from finance.portfolio import Group

_IN_SCOPE = "(CAST(:org AS uuid) IS NULL OR {column} = CAST(:org AS uuid))"

# Each loan's outstanding principal is its loan account's balance on the date (postings dated up to it): the
# MEMBER-LOAN line of the balance sheet, loan by loan. Loans with nothing outstanding are not in the portfolio.
_PORTFOLIO = text(f"""
    WITH outstanding AS (
        SELECT l.id, sum(p.amount) AS principal
        FROM loans l
        JOIN postings p ON p.account_id = l.loan_account_id
        JOIN journal_entries j ON j.id = p.entry_id
        WHERE j.effective_date <= :as_of AND {_IN_SCOPE.format(column="l.org_id")}
        GROUP BY l.id
    )
    SELECT coalesce(l.aging_bucket, 'current') AS bucket, pr.id AS product_id, pr.name AS product,
           count(*) AS loans, sum(o.principal) AS outstanding
    FROM outstanding o
    JOIN loans l ON l.id = o.id
    JOIN loan_products pr ON pr.id = l.product_id
    WHERE o.principal <> 0
    GROUP BY coalesce(l.aging_bucket, 'current'), pr.id, pr.name
""")


async def portfolio_groups(session: AsyncSession, org: uuid.UUID | None, as_of: date) -> list[Group]:
    rows = await session.execute(_PORTFOLIO, {"org": org, "as_of": as_of})
    return [
        Group(bucket=r.bucket, product_id=r.product_id, product=r.product, loans=r.loans, outstanding=r.outstanding)
        for r in rows
    ]


_BUDGETS = text(f"""
    SELECT line_key, sum(amount) AS amount
    FROM budgets
    WHERE period >= :first AND period <= :last AND {_IN_SCOPE.format(column="org_id")}
    GROUP BY line_key
""")


async def budgets_by_line(session: AsyncSession, org: uuid.UUID | None, first: date, last: date) -> dict[str, Decimal]:
    """Each line's budget over the months from `first` to `last` (first days); bank-wide: every organization's."""
    rows = await session.execute(_BUDGETS, {"org": org, "first": first, "last": last})
    return {r.line_key: Decimal(r.amount) for r in rows}


# What is still owed of each installment (payment and late fee less what the repayments allocated to it), summed
# by week of its due date.
_INSTALLMENTS = text(f"""
    WITH paid AS (
        SELECT a.loan_id, a.number, sum(a.amount) AS amount
        FROM loan_allocations a
        JOIN loans l ON l.id = a.loan_id
        WHERE l.status = 'active' AND {_IN_SCOPE.format(column="l.org_id")}
        GROUP BY a.loan_id, a.number
    )
    SELECT (i.due_date - CAST(:first AS date)) / 7 AS week,
           sum(i.payment + i.late_fee - coalesce(paid.amount, 0)) AS amount
    FROM loan_installments i
    JOIN loans l ON l.id = i.loan_id
    LEFT JOIN paid ON paid.loan_id = i.loan_id AND paid.number = i.number
    WHERE l.status = 'active' AND {_IN_SCOPE.format(column="l.org_id")}
      AND i.due_date >= :first AND i.due_date <= :last
    GROUP BY 1
    HAVING sum(i.payment + i.late_fee - coalesce(paid.amount, 0)) > 0
""")

_AUTOPAY_BILLS = text(f"""
    SELECT (due_date - CAST(:first AS date)) / 7 AS week, sum(amount) AS amount
    FROM bills
    WHERE autopay AND status IN ('upcoming', 'overdue') AND due_date >= :first AND due_date <= :last
      AND {_IN_SCOPE.format(column="org_id")}
    GROUP BY 1
""")

# Active book-transfer instructions (an ACH one's cash in or out is not in the forecast yet), and how many runs their count has left (the schedule counts every run it started: each
# scheduled time recorded, whatever its outcome).
_STANDING = text(f"""
    SELECT s.kind, s.amount, s.frequency, s.every_seconds, s.day, coalesce(s.start_at, s.created_at) AS start_at,
           s.end_at,
           s.count - (SELECT count(DISTINCT r.scheduled_for) FROM standing_instruction_runs r
                      WHERE r.instruction_id = s.id) AS remaining
    FROM standing_instructions s
    WHERE s.status = 'active' AND {_IN_SCOPE.format(column="s.org_id")}
      AND (s.end_at IS NULL OR s.end_at >= :now)
""")


async def weekly(session: AsyncSession, query, org: uuid.UUID | None, first: date, weeks: int) -> dict[int, Decimal]:
    last = first + timedelta(days=7 * weeks - 1)
    rows = await session.execute(query, {"org": org, "first": first, "last": last})
    return {int(r.week): Decimal(r.amount) for r in rows}


async def installments_by_week(session: AsyncSession, org: uuid.UUID | None, first: date, weeks: int):
    return await weekly(session, _INSTALLMENTS, org, first, weeks)


async def autopay_bills_by_week(session: AsyncSession, org: uuid.UUID | None, first: date, weeks: int):
    return await weekly(session, _AUTOPAY_BILLS, org, first, weeks)


async def standing_cadences(
    session: AsyncSession, org: uuid.UUID | None, now: datetime
) -> list[tuple[str, Decimal, Cadence]]:
    """Each active standing instruction of the scope: its kind (book, ach_debit, ach_credit), amount and cadence."""
    rows = await session.execute(_STANDING, {"org": org, "now": now})
    return [
        (
            r.kind,
            Decimal(r.amount),
            Cadence(
                frequency=r.frequency,
                every_seconds=r.every_seconds,
                day=r.day,
                start=r.start_at,
                end=r.end_at,
                remaining=None if r.remaining is None else max(0, r.remaining),
            ),
        )
        for r in rows
    ]
