"""Closing accounting periods. The rule itself is the database's (migration 0025: a posting dated inside a closed
period is refused); this module writes the closures, once each, with their audit row."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import or_, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core import audit
from models.periods import ClosedPeriod
from models.users import User

LOCK_TIMEOUT = "5s"  # how long a close waits for the postings in flight before answering "busy"


async def close(
    session: AsyncSession, actor: User, org_id: uuid.UUID | None, start: date, end: date, reason: str
) -> tuple[ClosedPeriod, bool]:
    """Closes [start, end] for `org_id` (None: the whole bank); (the closure, created). Closing the same range again
    finds the first closure. The SHARE ROW EXCLUSIVE lock on postings waits for the postings in flight to commit and
    holds new ones until this commits, so none lands in the period after it is closed (the trigger of a later one
    reads the closure with a fresh snapshot). The caller commits."""
    await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    await session.execute(text("LOCK TABLE postings IN SHARE ROW EXCLUSIVE MODE"))
    new_id = uuid.uuid4()
    # The conflict target is the expression of the index closed_periods_once (0025), word for word.
    inserted = await session.execute(
        text("""INSERT INTO closed_periods (id, org_id, period_start, period_end, reason, closed_by)
                VALUES (:id, :org, :start, :end, :reason, :by)
                ON CONFLICT ((COALESCE(org_id, '00000000-0000-0000-0000-000000000000'::uuid)), period_start, period_end)
                DO NOTHING RETURNING id"""),
        {"id": new_id, "org": org_id, "start": start, "end": end, "reason": reason, "by": actor.id},
    )
    created = inserted.first() is not None
    found = select(ClosedPeriod).where(
        col(ClosedPeriod.org_id).is_(None) if org_id is None else col(ClosedPeriod.org_id) == org_id,
        ClosedPeriod.period_start == start,
        ClosedPeriod.period_end == end,
    )
    period = (await session.exec(found)).one()
    if created:
        await audit.record(
            session,
            actor=actor.email,
            actor_id=actor.id,
            action="accounting_period.closed",
            entity_type="accounting_period",
            entity_id=period.id,
            after=audit.snapshot(period, ["org_id", "period_start", "period_end", "reason"]),
        )
    return period, created


_UNPOSTED_MONTHS = text("""
    SELECT to_char(m, 'YYYY-MM') AS period
    FROM generate_series(date_trunc('month', CAST(:start AS date)), CAST(:end AS date), interval '1 month') AS m
    WHERE CAST(m + interval '1 month - 1 day' AS date) BETWEEN :start AND :end
      AND EXISTS (SELECT 1 FROM accrual_runs r
                  WHERE r.day >= m AND r.day < m + interval '1 month' AND r.accrued > 0)
      AND NOT EXISTS (SELECT 1 FROM interest_posting_runs p WHERE p.period = to_char(m, 'YYYY-MM'))
    ORDER BY 1
""")


async def unposted_interest_months(session: AsyncSession, start: date, end: date) -> list[str]:
    """The months whose last day is in [start, end] with interest accrued but not yet posted: month-end posting
    dates its entries the month's last day, so closing such a period first would leave that posting refused (and
    its activity retrying) until the period reopened."""
    rows = await session.execute(_UNPOSTED_MONTHS, {"start": start, "end": end})
    return [r.period for r in rows]


def visible_closures(org_id: uuid.UUID | None):
    """The closures that apply to `org_id`'s accounts: its own and the bank-wide ones; every one for None."""
    statement = select(ClosedPeriod)
    if org_id is not None:
        statement = statement.where(or_(col(ClosedPeriod.org_id).is_(None), col(ClosedPeriod.org_id) == org_id))
    return statement
