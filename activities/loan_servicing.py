"""Repayments of an active loan: to the oldest installments first (late fee, then interest, then principal), as
a partial prepayment (principal only; the installments not yet due, paid or serviced are recomputed, same term,
lower installments), or as the payoff (what the quote says to the day), which closes the loan.

Each repayment is one balanced journal entry keyed by the caller's Idempotency-Key:
  debit the member's deposit account; credit the loan account (principal), interest income, fee income;
and its allocation per installment and component is stored with it (core/loan_books.py), once. What an
installment has paid and still owes is derived from those allocations, so a late fee charged after a partial
payment only adds to what is owed. Invariants: the loan account's balance is the principal still owed per the
allocations; fee income is the fees allocated; the loan closes when every installment is paid.

Servicing on the loan's clock (finance/servicing.py): the ACH credit that pays the loan out, an ACH debit per
installment on its due date (applied as a repayment once the debit completes and its hold is released; undone
by an opposite, linked entry if the bank returns it late, which reopens a closed loan), a late fee once the
grace days pass with the installment unpaid (owed on the installment, income when paid), and the arrears flag
with its aging bucket. Terms (rate, day count, grace days, late fee) are the loan's own, never the product's."""

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlmodel import col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.loans import _LOAN_ACCOUNT_NS, terms_of
from core import audit, ledger
from core.business_time import business_today
from core.config import Settings
from core.db import Database
from core.loan_books import installment_balances, installment_rows, mark_paid, record_repayment
from domain import webhooks
from domain.money_events import money_changed_for_entry
from finance.allocation import Allocation, InstallmentBalance, allocate, totals
from finance.amortization import payoff_amount, remaining_schedule
from finance.daycount import DayCount
from finance.servicing import BUCKET_STARTS, aging_bucket, days_past_due, late_fee_due
from models.external_accounts import ExternalAccount
from models.ledger import GL_FEE_INCOME, GL_INTEREST_INCOME
from models.loans import (
    AutoDebitApplied,
    AutoDebitInput,
    AutoDebitReversed,
    Loan,
    LoanInstallment,
    PayoffQuote,
    RepaymentInput,
    RepaymentResult,
    ServicingCheck,
    ServicingState,
)
from models.payments import AchChildPayment, Payment, PaymentKind, PaymentStatus
from models.users import User

ZERO = Decimal("0.00")
# An auto-debit in one of these has not paid its installment (the member owes it again, late after the grace days).
NOT_PAYING = (PaymentStatus.returned, PaymentStatus.failed, PaymentStatus.canceled, PaymentStatus.reversed)


def refuse(code: str, message: str) -> ApplicationError:
    return ApplicationError(message, type=code, non_retryable=True)


def repayment_entry_key(loan_id: uuid.UUID, paid_by: uuid.UUID, key: str) -> str:
    return f"loan:{loan_id}:repayment:{paid_by}:{key}"


def auto_debit_key(payment_id: uuid.UUID, presentment: int) -> str:
    """The repayment key of an auto-debit's presentment (the first keeps the key it always had)."""
    return f"auto-debit:{payment_id}" + (f":{presentment}" if presentment > 1 else "")


def loan_account(loan: Loan) -> uuid.UUID:
    """The loan's own ledger account: opened at disbursement, before anything is serviced."""
    assert loan.loan_account_id is not None
    return loan.loan_account_id


def disbursed_on(loan: Loan) -> date:
    assert loan.disbursed_at is not None  # only a disbursed loan is serviced
    return loan.disbursed_at.date()


async def outstanding_principal(session, loan: Loan) -> Decimal:
    balance = (await ledger.balances(session, [loan_account(loan)]))[loan_account(loan)]
    return balance.ledger


def fell_due(installment: InstallmentBalance, as_of: date) -> bool:
    """Due by `as_of`, or already charged its late fee (on the servicing clock, which tests run fast)."""
    return installment.due_date <= as_of or installment.fee > 0


def payoff_quote(loan: Loan, installments: list[InstallmentBalance], as_of: date) -> PayoffQuote:
    """Due installments not yet paid, plus the principal not yet due with interest accrued on it to the day (less
    any interest already paid towards the installments not yet due)."""
    due = [i for i in installments if fell_due(i, as_of) and not i.is_paid]
    due_unpaid = sum((i.owed for i in due), ZERO)
    due_principal = sum((i.owed_of("principal") for i in due), ZERO)
    ahead = [i for i in installments if not fell_due(i, as_of)]
    principal = sum((i.owed_of("principal") for i in ahead), ZERO)
    prepaid_interest = sum((i.paid_of("interest") for i in ahead), ZERO)
    last_due = max((i.due_date for i in installments if fell_due(i, as_of)), default=disbursed_on(loan))
    # An installment the servicing clock made due (its late fee charged) may still lie ahead of the calendar's
    # `as_of` when that clock runs fast (tests, demos): interest has then accrued to no later day than `as_of`.
    since = min(last_due, as_of)
    rest = payoff_amount(principal, loan.annual_rate, DayCount(loan.day_count), since, as_of)
    accrued = max(ZERO, rest - principal - prepaid_interest)
    return PayoffQuote(
        loan_id=loan.id,
        as_of=as_of,
        outstanding_principal=principal + due_principal,
        due_unpaid=due_unpaid,
        accrued_interest=accrued,
        amount=due_unpaid + principal + accrued,
    )


async def quote(session, loan: Loan, as_of: date) -> PayoffQuote:
    return payoff_quote(loan, await installment_balances(session, loan.id), as_of)


def charge_accrued_interest(
    rows: list[LoanInstallment], owing: list[InstallmentBalance], payoff: PayoffQuote, as_of: date
) -> None:
    """At the payoff the installments not yet due charge the interest accrued to the day instead of their
    scheduled interest: the first one that owes anything takes it, the others none beyond what they were paid."""
    share = payoff.accrued_interest
    for row, balance in zip(rows, owing, strict=False):
        if fell_due(balance, as_of) or balance.is_paid:
            continue
        row.interest, share = balance.paid_of("interest") + share, ZERO
        row.payment = row.interest + row.principal


class LoanServicingActivities:
    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings

    @activity.defn
    async def check_servicing(self, req: ServicingCheck) -> ServicingState:
        """Where the loan stands on day `as_of`: late fees charged once each, days past due, the aging bucket,
        the installments now due from `next_due` on, and the next day worth waking up for."""
        async with self.db.session() as session, session.begin():
            loan = (await session.exec(select(Loan).where(Loan.id == req.loan_id).with_for_update())).one()
            rows = await installment_rows(session, loan.id, lock=True)
            unpaid = {i.number for i in await installment_balances(session, loan.id, rows) if not i.is_paid}
            # An auto-debit taken on the due date is the member paying on time until the bank says otherwise: while
            # it clears (queued, submitted, pending settlement: days at the bank; or just planned, its payment row
            # not written yet) or once it has, the installment is neither late nor charged a fee. Only a debit
            # returned, failed or canceled leaves it late. (Charging while our own debit was in flight made that
            # debit pay the fee first, leaving principal that no later debit collected: the loan never closed.)
            debits = [i.auto_debit_payment_id for i in rows if i.auto_debit_payment_id]
            bounced = set(
                (
                    await session.exec(
                        select(Payment.id).where(col(Payment.id).in_(debits), col(Payment.status).in_(NOT_PAYING))
                    )
                ).all()
            )
            late = {
                i.number
                for i in rows
                if i.number in unpaid and (not i.auto_debit_payment_id or i.auto_debit_payment_id in bounced)
            }
            charged = 0
            for i in rows:
                if (
                    loan.status == "active"
                    and i.number in late
                    and i.late_fee_assessed_at is None
                    and late_fee_due(i.due_date, loan.grace_days, req.as_of)
                ):
                    i.late_fee, i.late_fee_assessed_at = loan.late_fee, datetime.now(UTC)
                    session.add(i)
                    charged += 1
                    await audit.record(
                        session,
                        actor=f"system:{activity.info().workflow_id}",
                        actor_id=None,
                        action="loan.late_fee",
                        entity_type="loan",
                        entity_id=loan.id,
                        after={
                            "installment": i.number,
                            "late_fee": str(loan.late_fee),
                            "due_date": str(i.due_date),
                            "as_of": str(req.as_of),
                        },
                    )
            oldest = min((i.due_date for i in rows if i.number in late and i.due_date < req.as_of), default=None)
            days = days_past_due(oldest, req.as_of) if loan.status == "active" else 0
            bucket = aging_bucket(days)
            if (days, bucket) != (loan.days_past_due, loan.aging_bucket):
                if bucket != loan.aging_bucket:
                    await audit.record(
                        session,
                        actor=f"system:{activity.info().workflow_id}",
                        actor_id=None,
                        action="loan.aging",
                        entity_type="loan",
                        entity_id=loan.id,
                        before={"aging_bucket": loan.aging_bucket},
                        after={"aging_bucket": bucket, "days_past_due": days},
                    )
                loan.days_past_due, loan.aging_bucket = days, bucket
                session.add(loan)
            # Days on which something changes: a grace period ends, the oldest unpaid due date ages into a bucket.
            upcoming = [
                i.due_date + timedelta(days=loan.grace_days + 1)
                for i in rows
                if i.number in unpaid and i.late_fee_assessed_at is None
            ]
            if oldest is not None:
                upcoming += [oldest + timedelta(days=start) for start in BUCKET_STARTS]
            later = [i.due_date for i in rows if i.number >= req.next_due and i.due_date > req.as_of]
            return ServicingState(
                status=loan.status,
                days_past_due=days,
                aging_bucket=bucket,
                late_fees_assessed=charged,
                due_numbers=[i.number for i in rows if i.number >= req.next_due and i.due_date <= req.as_of],
                next_due_date=min(later, default=None),
                next_check=min((day for day in upcoming if day > req.as_of), default=None),
            )

    @activity.defn
    async def plan_disbursement(self, loan_id: uuid.UUID) -> AchChildPayment | None:
        """The ACH credit paying the loan out from the deposit account to the member's bank account, if any."""
        async with self.db.session() as session, session.begin():
            loan = (await session.exec(select(Loan).where(Loan.id == loan_id).with_for_update())).one()
            if loan.external_account_id is None:
                return None
            payment_id = uuid.uuid5(_LOAN_ACCOUNT_NS, f"loan:{loan.id}:disbursement")
            if loan.disbursement_payment_id is None:
                loan.disbursement_payment_id = payment_id
                session.add(loan)
            external = await session.get(ExternalAccount, loan.external_account_id)
            assert external is not None  # asked for only when the member named their bank account
            return AchChildPayment(
                payment_id=payment_id,
                kind=PaymentKind.ach_credit,
                amount=loan.amount,
                account_id=loan.deposit_account_id,
                external_account_id=external.id,
                org_id=loan.org_id,
                created_by=loan.applicant_id,
                idempotency_key=f"loan:{loan.id}:disbursement",
                memo=f"Loan {str(loan.id)[:8]} disbursement",
                notify_workflow_id=loan.workflow_id,
                notify_reference="disbursement",
                summary=f"Loan disbursement ${loan.amount:,.2f} to {external.institution_name} …{external.account_last4}",
            )

    @activity.defn
    async def plan_auto_debit(self, req: AutoDebitInput) -> AchChildPayment | None:
        """The ACH debit for installment `number` on its due date: what it still owes (late fee included),
        from the member's bank account into the deposit account. None without auto-debit or when nothing is owed."""
        async with self.db.session() as session, session.begin():
            loan = await session.get(Loan, req.loan_id)
            row = (
                await session.exec(
                    select(LoanInstallment)
                    .where(LoanInstallment.loan_id == req.loan_id, LoanInstallment.number == req.number)
                    .with_for_update()
                )
            ).first()
            if row is None:
                return None
            assert loan is not None  # its installment is there
            if not loan.auto_debit or loan.status != "active":
                return None
            payment_id = uuid.uuid5(_LOAN_ACCOUNT_NS, f"loan:{loan.id}:auto-debit:{req.number}")
            owed = next(i.owed for i in await installment_balances(session, loan.id) if i.number == req.number)
            if row.auto_debit_payment_id is None:
                if owed <= 0:
                    return None  # paid ahead by hand
                row.auto_debit_payment_id = payment_id
                session.add(row)
            amount = (
                await session.execute(text("SELECT amount FROM payments WHERE id = :id"), {"id": payment_id})
            ).scalar_one_or_none() or owed
            external = await session.get(ExternalAccount, loan.external_account_id)
            assert external is not None  # auto-debit needs the member's bank account
            return AchChildPayment(
                payment_id=payment_id,
                kind=PaymentKind.ach_debit,
                amount=amount,
                account_id=loan.deposit_account_id,
                external_account_id=external.id,
                org_id=loan.org_id,
                created_by=loan.applicant_id,
                idempotency_key=f"loan:{loan.id}:auto-debit:{req.number}",
                memo=f"Loan {str(loan.id)[:8]} installment {req.number}",
                notify_workflow_id=loan.workflow_id,
                notify_reference=f"installment:{req.number}",
                summary=f"Loan installment {req.number} auto-debit ${amount:,.2f} from {external.institution_name} "
                f"…{external.account_last4}",
            )

    @activity.defn
    async def apply_auto_debit(self, req: AutoDebitApplied) -> RepaymentResult | None:
        """A completed auto-debit becomes a repayment from the deposit account, up to what the loan still owes
        (the rest stays on deposit). Keyed by the payment and presentment: applied once whatever retries happen."""
        async with self.db.session() as session:
            loan = await session.get(Loan, req.loan_id)
            payment = await session.get(Payment, req.payment_id)
            assert loan is not None and payment is not None
            applicant = await session.get(User, loan.applicant_id)
            owed = sum((i.owed for i in await installment_balances(session, loan.id)), ZERO)
        # A retry after the repayment was written finds it by its key inside apply_repayment, whatever amount.
        amount = min(payment.amount, owed)
        if amount <= 0 or payment.status != PaymentStatus.completed:
            return None
        assert applicant is not None
        return await self.apply_repayment(
            RepaymentInput(
                loan_id=loan.id,
                amount=amount,
                mode="installment",
                key=auto_debit_key(payment.id, req.presentment),
                paid_by=applicant.id,
                paid_by_email=f"system:auto-debit {payment.id}",
                payment_id=payment.id,
            )
        )

    @activity.defn
    async def reverse_auto_debit(self, req: AutoDebitApplied) -> AutoDebitReversed:
        """The bank took back an auto-debit after it completed (a late return): the repayment it became is undone
        once, by the opposite journal entry and the opposite allocations, linked to the original. The money goes
        back from the loan and income accounts to the deposit account (which the ACH reversal has just debited);
        the installments owe again (arrears and late fees from their own due dates), and a closed loan reopens."""
        async with self.db.session() as session, session.begin():
            loan = (await session.exec(select(Loan).where(Loan.id == req.loan_id).with_for_update())).one()
            key = repayment_entry_key(loan.id, loan.applicant_id, auto_debit_key(req.payment_id, req.presentment))
            applied = (
                await session.execute(
                    text(
                        "SELECT e.id, r.amount FROM journal_entries e LEFT JOIN loan_repayments r ON r.entry_id = e.id "
                        "WHERE e.idempotency_key = :k"
                    ),
                    {"k": key},
                )
            ).first()
            if applied is None:  # returned before it was applied: nothing to undo
                return AutoDebitReversed(loan_id=loan.id, status=loan.status, reversed=False)
            if applied.amount is None:
                raise ApplicationError(
                    f"auto-debit {req.payment_id} was applied before repayments' allocations were "
                    "stored: reverse it by hand",
                    type="ReversalNeedsOperator",
                    non_retryable=True,
                )
            if (
                await session.execute(
                    text("SELECT 1 FROM loan_repayments WHERE reverses_entry_id = :e"), {"e": applied.id}
                )
            ).first() is not None:
                return AutoDebitReversed(loan_id=loan.id, status=loan.status, reversed=True)  # a retry
            await ledger.lock_accounts(session, [loan.deposit_account_id, loan_account(loan)])
            postings = (
                await session.execute(
                    text("SELECT account_id, amount FROM postings WHERE entry_id = :e"), {"e": applied.id}
                )
            ).all()
            entry_id, _ = await ledger.post_entry(
                session,
                idempotency_key=f"{key}:reversal",
                entry_type="loan_repayment_reversal",
                description=f"Loan {loan.id}: auto-debit {req.payment_id} returned after completion, repayment "
                f"{applied.id} reversed",
                effective_date=business_today(self.settings),
                legs=[ledger.Leg(account, -amount) for account, amount in postings],
            )
            split = [
                Allocation(number, component, -amount)
                for number, component, amount in (
                    await session.execute(
                        text("SELECT number, component, amount FROM loan_allocations WHERE entry_id = :e"),
                        {"e": applied.id},
                    )
                ).all()
            ]
            await record_repayment(
                session,
                loan_id=loan.id,
                entry_id=entry_id,
                mode="reversal",
                amount=-applied.amount,
                split=split,
                payment_id=req.payment_id,
                reverses_entry_id=applied.id,
            )
            rows = await installment_rows(session, loan.id, lock=True)
            await mark_paid(session, rows, await installment_balances(session, loan.id, rows))
            before = loan.status
            if loan.status == "closed":
                loan.status, loan.closed_at, loan.updated_at = "active", None, datetime.now(UTC)
                session.add(loan)
                # Reopened by this reversal (a loan may close and reopen more than once): keyed by its entry.
                await webhooks.emit_loan(session, loan.id, loan.org_id, "active", before, f"reopened:{entry_id}")
            parts = totals(split)
            await audit.record(
                session,
                actor=f"system:{activity.info().workflow_id}",
                actor_id=None,
                action="loan.repayment_reversed",
                entity_type="loan",
                entity_id=loan.id,
                before={"status": before, "journal_entry_id": str(applied.id)},
                after={
                    "status": loan.status,
                    "journal_entry_id": str(entry_id),
                    "payment_id": str(req.payment_id),
                    "amount": str(-applied.amount),
                    **{component: str(amount) for component, amount in parts.items()},
                },
            )
            return AutoDebitReversed(loan_id=loan.id, status=loan.status, reversed=True)

    @activity.defn
    async def apply_repayment(self, req: RepaymentInput) -> RepaymentResult:
        """The repayment posted once by its key; then the member's money-events workflow is told (again on a retry,
        harmlessly)."""
        result = await self._apply_repayment(req)
        await money_changed_for_entry(
            activity.client(), self.db, result.journal_entry_id, "loan_repayment", self.settings
        )
        return result

    async def _apply_repayment(self, req: RepaymentInput) -> RepaymentResult:
        entry_key = repayment_entry_key(req.loan_id, req.paid_by, req.key)
        async with self.db.session() as session, session.begin():
            loan = (await session.exec(select(Loan).where(Loan.id == req.loan_id).with_for_update())).one()
            done = (
                await session.execute(
                    text("SELECT id FROM journal_entries WHERE idempotency_key = :k"), {"k": entry_key}
                )
            ).scalar_one_or_none()
            if done is not None:  # a retry: answer with what the first run wrote
                return await self._result(session, loan, done, req.amount)
            if loan.status != "active":
                raise refuse("loan_not_active", f"the loan is {loan.status}")
            await ledger.lock_accounts(session, [loan.deposit_account_id, loan_account(loan)])
            today = business_today(self.settings)
            rows = await installment_rows(session, loan.id, lock=True)
            owing = await installment_balances(session, loan.id, rows)
            if req.mode == "payoff" and req.amount != (payoff := payoff_quote(loan, owing, today)).amount:
                raise refuse("payoff_amount_mismatch", f"the payoff today is {payoff.amount}")
            available = (await ledger.balances(session, [loan.deposit_account_id]))[loan.deposit_account_id].available
            if available < req.amount:
                raise refuse("insufficient_funds", f"the deposit account has {available} available")
            split: list[Allocation] = []
            prepaid = ZERO
            if req.mode == "payoff":
                charge_accrued_interest(rows, owing, payoff, today)
                split, left = allocate(req.amount, await installment_balances(session, loan.id, rows))
                if left != 0:  # the quote is what the installments owe once the interest is to the day
                    raise refuse("payoff_amount_mismatch", f"the payoff of {req.amount} leaves {left} unallocated")
            elif req.mode == "prepayment":
                rows = await self._reamortize(session, loan, rows, owing, req.amount, today)
                prepaid = req.amount
            else:
                split, left = allocate(req.amount, owing)
                if left > 0:
                    raise refuse("overpayment", f"{left} more than every installment left: prepay or pay off")
            parts = totals(split)
            principal, interest, fees = parts["principal"] + prepaid, parts["interest"], parts["fee"]
            income = {}
            for code in (GL_INTEREST_INCOME, GL_FEE_INCOME):
                income[code] = await ledger.gl_account(session, code)  # loans are in US dollars
            legs = [ledger.Leg(loan.deposit_account_id, req.amount)]
            legs += [
                ledger.Leg(account, -amount)
                for account, amount in (
                    (loan_account(loan), principal),
                    (income[GL_INTEREST_INCOME], interest),
                    (income[GL_FEE_INCOME], fees),
                )
                if amount
            ]
            entry_id, _ = await ledger.post_entry(
                session,
                idempotency_key=entry_key,
                entry_type=f"loan_{req.mode}",
                description=f"Loan {loan.id} {req.mode}",
                effective_date=today,
                legs=legs,
            )
            await record_repayment(
                session,
                loan_id=loan.id,
                entry_id=entry_id,
                mode=req.mode,
                amount=req.amount,
                split=split,
                payment_id=req.payment_id,
            )
            after = await installment_balances(session, loan.id, rows)
            await mark_paid(session, rows, after)
            closed = all(i.is_paid for i in after)
            if closed:
                loan.status, loan.closed_at = "closed", datetime.now(UTC)
                session.add(loan)
                await webhooks.emit_loan(session, loan.id, loan.org_id, "closed", "active", f"closed:{entry_id}")
            await audit.record(
                session,
                actor=req.paid_by_email,
                actor_id=req.paid_by,
                action=f"loan.{req.mode}",
                entity_type="loan",
                entity_id=loan.id,
                after={
                    "amount": str(req.amount),
                    "principal": str(principal),
                    "interest": str(interest),
                    "fees": str(fees),
                    "closed": closed,
                },
            )
            return await self._result(session, loan, entry_id, req.amount)

    async def _reamortize(
        self,
        session,
        loan: Loan,
        rows: list[LoanInstallment],
        owing: list[InstallmentBalance],
        amount: Decimal,
        today: date,
    ) -> list[LoanInstallment]:
        """A prepayment of `amount` principal: the installments not yet due, paid or serviced (late fee, auto-debit)
        are recomputed on what they owe less `amount` (same term, lower installments); the others stay as they
        are. Returns the rows."""
        serviced = {row.number for row in rows if row.late_fee_assessed_at or row.auto_debit_payment_id}
        behind = max((i.number for i in owing if i.due_date <= today or i.started or i.number in serviced), default=0)
        future = {row.number: row for row in rows if row.number > behind}
        still_owed = sum((row.principal for row in future.values()), ZERO)
        if amount >= still_owed:
            raise refuse(
                "use_payoff",
                "this prepays every installment still to come: pay the installments due, or "
                "ask for a payoff quote and pay it instead",
            )
        assert loan.first_due_date is not None  # an active loan has its schedule
        try:
            rest = remaining_schedule(terms_of(loan, loan.first_due_date), still_owed - amount, behind)
        except ValueError as error:
            raise refuse("invalid_prepayment", f"the rest of the schedule cannot be recomputed: {error}") from error
        for new in rest.installments:
            row = future.pop(new.number, None) or LoanInstallment(
                loan_id=loan.id,
                number=new.number,
                due_date=new.due_date,
                payment=new.payment,
                interest=new.interest,
                principal=new.principal,
                balance=new.balance,
            )
            row.payment, row.interest, row.principal, row.balance = (
                new.payment,
                new.interest,
                new.principal,
                new.balance,
            )
            session.add(row)
        for row in future.values():
            await session.delete(row)  # the schedule ended early
        await session.flush()
        return await installment_rows(session, loan.id, lock=True)

    async def _result(self, session, loan: Loan, entry_id: uuid.UUID, amount: Decimal) -> RepaymentResult:
        parts = dict(
            (
                await session.execute(
                    text(
                        "SELECT coalesce(a.code, CASE WHEN a.id = :loan_account THEN 'principal' END), -p.amount "
                        "FROM postings p JOIN ledger_accounts a ON a.id = p.account_id WHERE p.entry_id = :e AND p.amount < 0"
                    ),
                    {"e": entry_id, "loan_account": loan.loan_account_id},
                )
            ).all()
        )
        return RepaymentResult(
            loan_id=loan.id,
            amount=amount,
            principal=parts.get("principal", ZERO),
            interest=parts.get(GL_INTEREST_INCOME, ZERO),
            fees=parts.get(GL_FEE_INCOME, ZERO),
            outstanding_principal=await outstanding_principal(session, loan),
            status=loan.status,
            journal_entry_id=entry_id,
        )
