"""A maker-checker request's steps on Postgres (domain/maker_checker.py): its approval request for the checker, the
request applied once it is approved (one journal entry keyed `maker-checker:<id>`, or the period closed), or closed
with its hold released when it is not."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import text
from temporalio import activity

from activities.approval_requests import insert_approval_request
from core import audit, ledger
from core.business_time import business_today
from core.config import Settings
from core.db import Database
from core.task_queues import queue_for
from domain import budgets, periods
from domain.money_events import money_changed_for_entry
from models.approvals import ApprovalInput, LevelSpec
from models.ledger import GL_CASH
from models.maker_checker import MakerCheckerInput, MakerCheckerKind, MakerCheckerOutcome, MakerCheckerStatus
from models.users import User

MAKER_CHECKER_NS = uuid.UUID("3e7d1c2b-8a4f-4b6e-9c5d-7f0a1b2c3d4e")
SUBJECT_TYPES = {
    MakerCheckerKind.deposit: "large_deposit",
    MakerCheckerKind.withdrawal: "large_withdrawal",
    MakerCheckerKind.book_transfer: "large_transfer",
    MakerCheckerKind.journal_entry: "manual_journal_entry",
    MakerCheckerKind.period_close: "period_close",
    MakerCheckerKind.budget_change: "budget_change",
}
ENTRY_TYPES = {
    MakerCheckerKind.deposit: "cash_deposit",
    MakerCheckerKind.withdrawal: "cash_withdrawal",
    MakerCheckerKind.book_transfer: "book_transfer",
    MakerCheckerKind.journal_entry: "manual",
}


def _title(row) -> str:
    if row.kind == MakerCheckerKind.budget_change:
        return f"Budget of {row.budget_line} for {row.period_start:%Y-%m}: ${row.amount:,.2f}"[:200]
    if row.kind == MakerCheckerKind.period_close:
        return f"Close the period {row.period_start} to {row.period_end}: {row.description}"[:200]
    what = SUBJECT_TYPES[row.kind].replace("_", " ").capitalize()
    return f"{what} ${row.amount:,.2f}: {row.description}"[:200]


class MakerCheckerActivities:
    def __init__(self, db: Database, settings: Settings):
        self.db, self.settings = db, settings

    @activity.defn
    async def create_maker_checker_approval(self, req: MakerCheckerInput) -> ApprovalInput:
        """The checker's approval request (once: its id derives from the request's): one level of MAKER_CHECKER_ROLE
        in the organization; the maker submitted it, so may not decide it."""
        request_id = uuid.uuid5(MAKER_CHECKER_NS, f"approval:{req.request_id}")
        levels = [
            LevelSpec(
                role=self.settings.maker_checker_role,
                deadline_seconds=self.settings.maker_checker_decision_deadline.total_seconds(),
            )
        ]
        async with self.db.session() as session, session.begin():
            row = (
                await session.execute(
                    text(
                        """SELECT id, kind, org_id, requested_by, amount, description, period_start, period_end,
                                  budget_line
                           FROM maker_checker_requests WHERE id = :id"""
                    ),
                    {"id": req.request_id},
                )
            ).one()
            title = _title(row)
            await insert_approval_request(
                session,
                request_id=request_id,
                subject_type=SUBJECT_TYPES[row.kind],
                subject_id=row.id,
                title=title,
                org_id=row.org_id,
                amount=row.amount,
                submitted_by=row.requested_by,
                levels=[level.model_dump(mode="json") for level in levels],
                final_outcome="decline",
            )
            await session.execute(
                text("UPDATE maker_checker_requests SET approval_request_id = :request WHERE id = :id"),
                {"request": request_id, "id": req.request_id},
            )
        return ApprovalInput(
            request_id=request_id,
            org_id=row.org_id,
            title=title,
            amount=Decimal(row.amount),
            applicant_id=None,
            submitted_by=row.requested_by,
            levels=levels,
            final_outcome="decline",
            task_queue=queue_for(self.settings, "ApprovalWorkflow"),
        )

    @activity.defn
    async def apply_maker_checker(self, req: MakerCheckerInput) -> MakerCheckerOutcome:
        """The approved request, applied once under a lock on its row: its entry posted (the hold captured with it),
        or its period closed. A ledger rule refusing it (an account closed, the date now in a closed period) fails
        the request with the rule's words and releases its hold: retrying would not change them. A posted entry's
        members are told after the commit (their budgets and alerts; again on a retry, harmlessly)."""
        outcome = await self._apply(req)
        if outcome.status == MakerCheckerStatus.completed and outcome.journal_entry_id is not None:
            await money_changed_for_entry(
                activity.client(), self.db, outcome.journal_entry_id, "maker_checker", self.settings
            )
        return outcome

    async def _apply(self, req: MakerCheckerInput) -> MakerCheckerOutcome:
        async with self.db.session() as session, session.begin():
            row = await self._lock(session, req.request_id)
            if row.status != MakerCheckerStatus.pending_approval:  # a retry after it was written
                return self._outcome(row)
            if row.kind == MakerCheckerKind.period_close:
                return await self._close_period(session, row)
            if row.kind == MakerCheckerKind.budget_change:
                maker = await session.get(User, row.requested_by)
                assert maker is not None  # requested_by is a foreign key
                await budgets.put(session, maker, row.org_id, row.budget_line, row.period_start, row.amount)
                return await self._finish(session, row, MakerCheckerStatus.completed)
            try:
                async with session.begin_nested():
                    legs = await self._legs(session, row)  # locks the accounts first, as every posting does
                    if row.hold_id is not None:  # the held money is the money that moves now
                        await ledger.release_hold(session, row.hold_id, status="captured")
                    entry_id, _ = await ledger.post_entry(
                        session,
                        idempotency_key=f"maker-checker:{row.id}",
                        entry_type=ENTRY_TYPES[row.kind],
                        description=row.description,
                        effective_date=row.effective_date or business_today(self.settings),
                        legs=legs,
                    )
            except ledger.LedgerError as refused:
                return await self._finish(session, row, MakerCheckerStatus.failed, failure=str(refused)[:500])
            return await self._finish(session, row, MakerCheckerStatus.completed, journal_entry_id=entry_id)

    @activity.defn
    async def close_maker_checker(self, req: MakerCheckerInput) -> MakerCheckerOutcome:
        """The checker rejected it, or its deadline passed: nothing is posted, its hold is released."""
        async with self.db.session() as session, session.begin():
            row = await self._lock(session, req.request_id)
            if row.status != MakerCheckerStatus.pending_approval:
                return self._outcome(row)
            return await self._finish(session, row, MakerCheckerStatus.rejected)

    # --- helpers --------------------------------------------------------------------------------------------------

    async def _lock(self, session, request_id: uuid.UUID):
        return (
            await session.execute(
                text("SELECT * FROM maker_checker_requests WHERE id = :id FOR UPDATE"), {"id": request_id}
            )
        ).one()

    async def _legs(self, session, row) -> list[ledger.Leg]:
        if row.kind == MakerCheckerKind.journal_entry:
            return [ledger.Leg(uuid.UUID(leg["account_id"]), Decimal(leg["amount"])) for leg in row.legs]
        if row.kind == MakerCheckerKind.book_transfer:
            await ledger.lock_accounts(session, [row.account_id, row.counter_account_id])
            return [ledger.Leg(row.account_id, row.amount), ledger.Leg(row.counter_account_id, -row.amount)]
        currency = (
            await session.execute(text("SELECT currency FROM ledger_accounts WHERE id = :id"), {"id": row.account_id})
        ).scalar_one()
        cash = await ledger.gl_account(session, GL_CASH, currency)
        await ledger.lock_accounts(session, [row.account_id])
        if row.kind == MakerCheckerKind.deposit:  # debit cash at bank, credit the member's account
            return [ledger.Leg(cash, row.amount), ledger.Leg(row.account_id, -row.amount)]
        return [ledger.Leg(row.account_id, row.amount), ledger.Leg(cash, -row.amount)]  # a withdrawal: the reverse

    async def _close_period(self, session, row) -> MakerCheckerOutcome:
        if pending := await periods.unposted_interest_months(session, row.period_start, row.period_end):
            failure = f"interest accrued in {', '.join(pending)} is not posted yet: close after month-end posting"
            return await self._finish(session, row, MakerCheckerStatus.failed, failure=failure)
        maker = await session.get(User, row.requested_by)
        # A lock timeout (postings in flight) raises: the activity's retry closes it once they have committed.
        period, _ = await periods.close(session, maker, row.org_id, row.period_start, row.period_end, row.description)
        return await self._finish(session, row, MakerCheckerStatus.completed, closed_period_id=period.id)

    async def _finish(
        self,
        session,
        row,
        status: MakerCheckerStatus,
        *,
        failure: str | None = None,
        journal_entry_id: uuid.UUID | None = None,
        closed_period_id: uuid.UUID | None = None,
    ) -> MakerCheckerOutcome:
        if status != MakerCheckerStatus.completed and row.hold_id is not None:
            await ledger.release_hold(session, row.hold_id)
        await session.execute(
            text(
                """UPDATE maker_checker_requests SET status = :status, failure = :failure, journal_entry_id = :entry,
                          closed_period_id = :period, closed_at = :now WHERE id = :id"""
            ),
            {
                "status": status,
                "failure": failure,
                "entry": journal_entry_id,
                "period": closed_period_id,
                "now": datetime.now(UTC),
                "id": row.id,
            },
        )
        await audit.record(
            session,
            actor="system",
            actor_id=None,
            action=f"maker_checker.{row.kind}.{status}",
            entity_type="maker_checker_request",
            entity_id=row.id,
            before={"status": row.status},
            after={
                "status": status,
                "failure": failure,
                "journal_entry_id": str(journal_entry_id) if journal_entry_id else None,
                "closed_period_id": str(closed_period_id) if closed_period_id else None,
            },
        )
        return MakerCheckerOutcome(
            request_id=row.id,
            status=status,
            journal_entry_id=journal_entry_id,
            closed_period_id=closed_period_id,
            failure=failure,
        )

    def _outcome(self, row) -> MakerCheckerOutcome:
        return MakerCheckerOutcome(
            request_id=row.id,
            status=row.status,
            journal_entry_id=row.journal_entry_id,
            closed_period_id=row.closed_period_id,
            failure=row.failure,
        )
