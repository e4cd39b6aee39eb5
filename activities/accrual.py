"""Daily interest accrual: every account with a savings product, in keyset-ordered batches of one set-based
statement each (core/interest.py), each batch its own transaction. Heartbeats carry the cursor and the running
totals, so a retry after a crash resumes where the last heartbeat left off; a batch redone writes nothing
twice (unique (account_id, day), ON CONFLICT DO NOTHING) and reports the same totals. The last step records the
day in accrual_runs: month-end posting accrues first the days of its month without that record."""

from decimal import Decimal
from typing import Any

from temporalio import activity

from core.config import Settings
from core.db import Database, execute_planned_afresh
from core.interest import ACCRUE_BATCH, RECORD_ACCRUAL_RUN
from models.interest import AccrualDay, AccrualResult


class AccrualActivities:
    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings

    @activity.defn
    async def accrue_day(self, req: AccrualDay) -> AccrualResult:
        size = req.batch_size or self.settings.accrual_batch_size
        details = activity.info().heartbeat_details
        progress: list[Any] = details[0] if details else [None, 0, "0", 0]
        after, accounts, accrued, batches = progress
        accrued = Decimal(accrued)
        while True:
            async with self.db.session() as session, session.begin():
                row = await execute_planned_afresh(
                    session, ACCRUE_BATCH, {"day": req.day, "after": after, "size": size}
                )
            if row.accounts == 0:
                break
            after, batches = str(row.last_account_id), batches + 1
            accounts, accrued = accounts + row.accrued_accounts, accrued + row.accrued
            activity.heartbeat([after, accounts, str(accrued), batches])
        async with self.db.session() as session, session.begin():
            await session.execute(RECORD_ACCRUAL_RUN, {"day": req.day, "accounts": accounts, "accrued": accrued})
        activity.logger.info("accrued %s: %d accounts, %s in %d batches", req.day, accounts, accrued, batches)
        return AccrualResult(day=req.day, accounts=accounts, accrued=accrued, batches=batches)
