"""A standing instruction's run on Postgres and Temporal: its book transfer, or its ACH credit or debit, through
the same domain path as `POST /transfers/book` or `POST /payments` (the owner's access is checked again at every
run), under an Idempotency-Key of the instruction, the run's scheduled time and the attempt; and the owner told of a
run that failed every attempt. An ACH run ends when its payment is made and its workflow started ("initiated"): the
payment's days-long life (settlement, a return) is its own, at /payments/{id}."""

from sqlalchemy import text
from temporalio import activity
from temporalio.client import Client

from activities.notifications import NotificationActivities
from api.errors import AppError
from core.access import AccessDenied
from core.config import Settings
from core.db import Database
from domain import payments
from domain.payments import BookTransferIn, PaymentIn
from models.notifications import NotifyUsers
from models.payments import PaymentKind, PaymentOutcome, PaymentStatus
from models.standing import (
    InstructionKind,
    InstructionStatus,
    StandingInstruction,
    StandingRunOutcome,
    StandingRunStep,
)
from models.users import User

FINAL = (PaymentStatus.completed, PaymentStatus.failed)


def run_key(step: StandingRunStep) -> str:
    return f"standing:{step.instruction_id}:{step.scheduled_for.isoformat()}:{step.attempt}"


class StandingActivities:
    def __init__(self, db: Database, settings: Settings, client: Client, notifications: NotificationActivities):
        self.db, self.settings, self.client, self.notifications = db, settings, client, notifications

    @activity.defn
    async def pay_run(self, step: StandingRunStep) -> StandingRunOutcome:
        """The run's transfer, once: a retry finds the run recorded, or the payment its key already made."""
        async with self.db.session() as session:
            recorded = await self._recorded(session, step)
            if recorded is not None:
                return recorded
            instruction = await session.get(StandingInstruction, step.instruction_id)
            assert instruction is not None, step
            owner = await session.get(User, instruction.created_by)
            if instruction.status != InstructionStatus.active:  # paused or canceled after the run was started
                outcome = StandingRunOutcome(
                    status="skipped", failure_reason=f"the instruction is {instruction.status}"
                )
            elif owner is None or not owner.is_active:
                outcome = StandingRunOutcome(
                    status="failed", failure_code="owner_inactive", failure_reason="its owner's user is deactivated"
                )
            elif instruction.kind == InstructionKind.book:
                outcome = await self._pay(session, instruction, owner, step)
            else:
                outcome = await self._pay_ach(session, instruction, owner, step)
        async with self.db.session() as session, session.begin():
            await session.execute(
                text(
                    """INSERT INTO standing_instruction_runs
                           (instruction_id, scheduled_for, attempt, payment_id, status, failure_code, failure_reason)
                       VALUES (:id, :at, :attempt, :payment, :status, :code, :reason) ON CONFLICT DO NOTHING"""
                ),
                {
                    "id": step.instruction_id,
                    "at": step.scheduled_for,
                    "attempt": step.attempt,
                    "payment": outcome.payment_id,
                    "status": outcome.status,
                    "code": outcome.failure_code,
                    "reason": (outcome.failure_reason or "")[:500] or None,
                },
            )
        return outcome

    async def _pay(self, session, instruction: StandingInstruction, owner: User, step: StandingRunStep):
        body = BookTransferIn(
            from_account_id=instruction.from_account_id,
            to_account_id=instruction.to_account_id,
            amount=instruction.amount,
            memo=instruction.memo,
        )
        try:
            transfer, _ = await payments.create_book_transfer(
                body, run_key(step), session, owner, self.client, self.settings
            )
        except AppError as refused:  # insufficient funds, a closed account: nothing was written
            return StandingRunOutcome(status="failed", failure_code=refused.code, failure_reason=refused.message)
        except AccessDenied as denied:  # the owner may no longer move this account's money
            return StandingRunOutcome(status="failed", failure_code="forbidden", failure_reason=str(denied))
        status, code, reason = transfer.status, transfer.failure_code, transfer.failure_reason
        if status not in FINAL:  # still posting: a book transfer takes a moment
            handle = self.client.get_workflow_handle(transfer.workflow_id, result_type=PaymentOutcome)
            result = await handle.result()
            status, code, reason = result.status, result.failure_code, result.failure_reason
        return StandingRunOutcome(
            status="completed" if status == PaymentStatus.completed else "failed",
            payment_id=transfer.id,
            failure_code=code,
            failure_reason=reason,
        )

    async def _pay_ach(self, session, instruction: StandingInstruction, owner: User, step: StandingRunStep):
        credit = instruction.kind == InstructionKind.ach_credit
        account_id = instruction.from_account_id if credit else instruction.to_account_id
        assert account_id is not None and instruction.external_account_id is not None  # the row's CHECK
        body = PaymentIn(
            kind=PaymentKind(instruction.kind),
            amount=instruction.amount,
            account_id=account_id,
            external_account_id=instruction.external_account_id,
            memo=instruction.memo,
        )
        try:
            payment, _ = await payments.create_ach_payment(
                body, run_key(step), session, owner, self.client, self.settings
            )
        except AppError as refused:  # insufficient funds, the external account disabled: nothing was written
            return StandingRunOutcome(status="failed", failure_code=refused.code, failure_reason=refused.message)
        except AccessDenied as denied:  # the owner may no longer make ACH payments or see the accounts
            return StandingRunOutcome(status="failed", failure_code="forbidden", failure_reason=str(denied))
        return StandingRunOutcome(status="initiated", payment_id=payment.id)

    async def _recorded(self, session, step: StandingRunStep) -> StandingRunOutcome | None:
        row = (
            await session.execute(
                text(
                    """SELECT status, payment_id, failure_code, failure_reason FROM standing_instruction_runs
                       WHERE instruction_id = :id AND scheduled_for = :at AND attempt = :attempt"""
                ),
                {"id": step.instruction_id, "at": step.scheduled_for, "attempt": step.attempt},
            )
        ).first()
        if row is None:
            return None
        return StandingRunOutcome(
            status=row.status,
            payment_id=row.payment_id,
            failure_code=row.failure_code,
            failure_reason=row.failure_reason,
        )

    @activity.defn
    async def notify_failure(self, step: StandingRunStep) -> int:
        """The owner, by email and in-app, once per run: every attempt of the run failed."""
        async with self.db.session() as session:
            row = (
                await session.execute(
                    text(
                        """SELECT i.created_by, i.amount, r.failure_reason,
                                  coalesce(a.name, x.institution_name || ' …' || x.account_last4) AS destination
                           FROM standing_instructions i
                           LEFT JOIN ledger_accounts a ON a.id = i.to_account_id
                           LEFT JOIN external_accounts x ON x.id = i.external_account_id
                           LEFT JOIN standing_instruction_runs r ON r.instruction_id = i.id
                                AND r.scheduled_for = :at AND r.attempt = :attempt
                           WHERE i.id = :id"""
                    ),
                    {"id": step.instruction_id, "at": step.scheduled_for, "attempt": step.attempt},
                )
            ).one()
        return await self.notifications.notify_users(
            NotifyUsers(
                user_ids=[row.created_by],
                kind="standing_instruction_failed",
                template="standing_instruction_failed",
                context={
                    "amount": f"${row.amount:,.2f}",
                    "destination": row.destination,
                    "scheduled_for": f"{step.scheduled_for:%Y-%m-%d %H:%M} UTC",
                    "attempts": step.attempt,
                    "reason": row.failure_reason or "the transfer failed",
                    "link": f"{self.settings.public_base_url}/api/v1/standing-instructions/{step.instruction_id}",
                },
                entity_type="standing_instruction",
                entity_id=str(step.instruction_id),
                dedupe_key=f"standing-failed:{step.instruction_id}:{int(step.scheduled_for.timestamp())}",
            )
        )
