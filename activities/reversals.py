"""A reversal request's steps on Postgres (domain/reversals.py): its approval request for the checker, the opposite
entry once it is approved, or its close when it is not."""

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
from domain.money_events import money_changed_for_entry
from models.approvals import ApprovalInput, LevelSpec
from models.reversals import ReversalInput, ReversalOutcome, ReversalStatus

REVERSAL_NS = uuid.UUID("6a0c7e55-3b1e-4c43-9d0e-2f6f6b4c1a77")


class ReversalActivities:
    def __init__(self, db: Database, settings: Settings):
        self.db, self.settings = db, settings

    @activity.defn
    async def create_reversal_approval(self, req: ReversalInput) -> ApprovalInput:
        """The checker's approval request (once: its id derives from the reversal's): one level of
        REVERSAL_CHECKER_ROLE in the entry's organization; the maker submitted it, so may not decide it."""
        request_id = uuid.uuid5(REVERSAL_NS, f"approval:{req.reversal_id}")
        levels = [
            LevelSpec(
                role=self.settings.reversal_checker_role,
                deadline_seconds=self.settings.reversal_decision_deadline.total_seconds(),
            )
        ]
        async with self.db.session() as session, session.begin():
            row = (
                await session.execute(
                    text(
                        """SELECT r.entry_id, r.org_id, r.requested_by, r.reason, e.entry_type, e.description,
                                  (SELECT sum(amount) FROM postings WHERE entry_id = e.id AND amount > 0) AS amount
                           FROM entry_reversals r JOIN journal_entries e ON e.id = r.entry_id WHERE r.id = :id"""
                    ),
                    {"id": req.reversal_id},
                )
            ).one()
            title = f"Reversal of {row.entry_type} ${row.amount:,.2f} ({row.description[:60]}): {row.reason}"[:200]
            await insert_approval_request(
                session,
                request_id=request_id,
                subject_type="journal_reversal",
                subject_id=row.entry_id,
                title=title,
                org_id=row.org_id,
                amount=row.amount,
                submitted_by=row.requested_by,
                levels=[level.model_dump(mode="json") for level in levels],
                final_outcome="decline",
            )
            await session.execute(
                text("UPDATE entry_reversals SET approval_request_id = :request WHERE id = :id"),
                {"request": request_id, "id": req.reversal_id},
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
    async def post_reversal(self, req: ReversalInput) -> ReversalOutcome:
        """The exact opposite of the entry, dated today, once (the entry key `reversal:<entry id>` is unique), and
        the request marked posted with it. A ledger rule refusing it (an account closed since) fails the request
        with the rule's words instead: retrying would not change them. The accounts' members are told after the
        commit."""
        outcome = await self._post(req)
        if outcome.status == ReversalStatus.posted and outcome.reversal_entry_id is not None:
            await money_changed_for_entry(
                activity.client(), self.db, outcome.reversal_entry_id, "reversal", self.settings
            )
        return outcome

    async def _post(self, req: ReversalInput) -> ReversalOutcome:
        async with self.db.session() as session, session.begin():
            reversal = (
                await session.execute(
                    text(
                        "SELECT id, entry_id, status, reversal_entry_id, failure, reason, requested_by "
                        "FROM entry_reversals WHERE id = :id FOR UPDATE"
                    ),
                    {"id": req.reversal_id},
                )
            ).one()
            if reversal.status != ReversalStatus.pending_approval:  # a retry after it was written
                return ReversalOutcome(
                    reversal_id=reversal.id,
                    status=reversal.status,
                    reversal_entry_id=reversal.reversal_entry_id,
                    failure=reversal.failure,
                )
            postings = (
                await session.execute(
                    text("SELECT account_id, amount FROM postings WHERE entry_id = :id ORDER BY id"),
                    {"id": reversal.entry_id},
                )
            ).all()
            try:
                async with session.begin_nested():
                    entry_id, _ = await ledger.post_entry(
                        session,
                        idempotency_key=f"reversal:{reversal.entry_id}",
                        entry_type="reversal",
                        description=f"Reversal of entry {reversal.entry_id}: {reversal.reason}"[:500],
                        effective_date=business_today(self.settings),
                        legs=[ledger.Leg(p.account_id, -p.amount) for p in postings],
                    )
            except ledger.LedgerError as refused:
                return await self._close(session, reversal, ReversalStatus.failed, failure=str(refused)[:500])
            await session.execute(
                text(
                    """UPDATE entry_reversals SET status = 'posted', reversal_entry_id = :entry, closed_at = :now
                       WHERE id = :id"""
                ),
                {"entry": entry_id, "now": datetime.now(UTC), "id": reversal.id},
            )
            await audit.record(
                session,
                actor="system",
                actor_id=None,
                action="journal_entry.reversed",
                entity_type="journal_entry",
                entity_id=reversal.entry_id,
                after={"reversal_id": str(reversal.id), "reversal_entry_id": str(entry_id)},
            )
            return ReversalOutcome(reversal_id=reversal.id, status=ReversalStatus.posted, reversal_entry_id=entry_id)

    @activity.defn
    async def close_reversal(self, req: ReversalInput) -> ReversalOutcome:
        """The checker rejected it, or its deadline passed: nothing is posted."""
        async with self.db.session() as session, session.begin():
            reversal = (
                await session.execute(
                    text("SELECT id, entry_id, status, failure FROM entry_reversals WHERE id = :id FOR UPDATE"),
                    {"id": req.reversal_id},
                )
            ).one()
            if reversal.status != ReversalStatus.pending_approval:
                return ReversalOutcome(reversal_id=reversal.id, status=reversal.status, failure=reversal.failure)
            return await self._close(session, reversal, ReversalStatus.rejected)

    async def _close(self, session, reversal, status: ReversalStatus, failure: str | None = None) -> ReversalOutcome:
        await session.execute(
            text("UPDATE entry_reversals SET status = :status, failure = :failure, closed_at = :now WHERE id = :id"),
            {"status": status, "failure": failure, "now": datetime.now(UTC), "id": reversal.id},
        )
        await audit.record(
            session,
            actor="system",
            actor_id=None,
            action=f"journal_entry.reversal_{status}",
            entity_type="journal_entry",
            entity_id=reversal.entry_id,
            after={"reversal_id": str(reversal.id), "failure": failure},
        )
        return ReversalOutcome(reversal_id=reversal.id, status=status, failure=failure)
