"""Repayments of an active loan: to the next installments (late fees, then interest, then principal), as a
partial prepayment (principal only; the rest of the schedule is recomputed, same term, lower installments),
or as the payoff (what the quote says to the day), which closes the loan.

Each repayment is one balanced journal entry keyed by the caller's Idempotency-Key:
  debit the member's deposit account; credit the loan account (principal), interest income, fee income.

Servicing on the loan's clock (finance/servicing.py): the ACH credit that pays the loan out, an ACH debit per
installment on its due date (applied as a repayment once the debit completes and its hold is released), a late
fee once the grace days pass with the installment unpaid (owed on the installment, income when paid), and the
arrears flag with its aging bucket."""

import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import text
from sqlmodel import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.loans import _LOAN_ACCOUNT_NS, terms_of
from core import audit, ledger
from core.db import Database
from finance.amortization import payoff_amount, remaining_schedule
from finance.daycount import DayCount
from finance.servicing import BUCKET_STARTS, aging_bucket, days_past_due, late_fee_due
from models.external_accounts import ExternalAccount
from models.ledger import GL_FEE_INCOME, GL_INTEREST_INCOME
from models.loans import (AutoDebitApplied, AutoDebitInput, Loan, LoanInstallment, LoanProduct, PayoffQuote,
                          RepaymentInput, RepaymentResult, ServicingCheck, ServicingState)
from models.payments import AchChildPayment, Payment, PaymentKind, PaymentStatus
from models.users import User

ZERO = Decimal("0.00")


def refuse(code: str, message: str) -> ApplicationError:
    return ApplicationError(message, type=code, non_retryable=True)


async def outstanding_principal(session, loan: Loan) -> Decimal:
    balance = (await ledger.balances(session, [loan.loan_account_id]))[loan.loan_account_id]
    return balance.ledger


async def quote(session, loan: Loan, as_of: date) -> PayoffQuote:
    """Due installments not yet paid, plus the principal not yet due with interest accrued on it to the day."""
    product = await session.get(LoanProduct, loan.product_id)
    installments = (await session.exec(select(LoanInstallment).where(LoanInstallment.loan_id == loan.id)
                                       .order_by(LoanInstallment.number))).all()
    due = [i for i in installments if i.due_date <= as_of and i.paid < i.payment + i.late_fee]
    due_unpaid = sum((i.payment + i.late_fee - i.paid for i in due), ZERO)
    # Principal still owed once the due installments are paid (their unpaid principal is in due_unpaid).
    due_principal = sum((max(ZERO, i.principal - max(ZERO, i.paid - i.late_fee - i.interest)) for i in due), ZERO)
    principal = await outstanding_principal(session, loan) - due_principal
    last_due = max((i.due_date for i in installments if i.due_date <= as_of), default=loan.disbursed_at.date())
    rest = payoff_amount(principal, product.annual_rate, DayCount(product.day_count), last_due, as_of)
    return PayoffQuote(loan_id=loan.id, as_of=as_of, outstanding_principal=principal + due_principal,
                       due_unpaid=due_unpaid, accrued_interest=rest - principal, amount=due_unpaid + rest)


def unpaid(installment: LoanInstallment) -> bool:
    return installment.paid < installment.payment + installment.late_fee


class LoanServicingActivities:
    def __init__(self, db: Database):
        self.db = db

    @activity.defn
    async def check_servicing(self, req: ServicingCheck) -> ServicingState:
        """Where the loan stands on day `as_of`: late fees charged once each, days past due, the aging bucket,
        the installments now due from `next_due` on, and the next day worth waking up for."""
        async with self.db.session() as session, session.begin():
            loan = (await session.exec(select(Loan).where(Loan.id == req.loan_id).with_for_update())).one()
            product = await session.get(LoanProduct, loan.product_id)
            installments = (await session.exec(select(LoanInstallment).where(LoanInstallment.loan_id == loan.id)
                                               .order_by(LoanInstallment.number))).all()
            # A debit that has brought the money in (settled or completed) is a payment on its way, not arrears.
            paying = set((await session.exec(select(Payment.id).where(
                Payment.id.in_([i.auto_debit_payment_id for i in installments if i.auto_debit_payment_id]),
                Payment.status.in_([PaymentStatus.settled, PaymentStatus.completed])))).all())
            charged = 0
            for i in installments:
                if (loan.status == "active" and unpaid(i) and i.late_fee_assessed_at is None
                        and i.auto_debit_payment_id not in paying and late_fee_due(i.due_date, product.grace_days, req.as_of)):
                    i.late_fee, i.late_fee_assessed_at = product.late_fee, datetime.now(timezone.utc)
                    session.add(i)
                    charged += 1
                    await audit.record(session, actor=f"system:{activity.info().workflow_id}", actor_id=None,
                                       action="loan.late_fee", entity_type="loan", entity_id=loan.id,
                                       after={"installment": i.number, "late_fee": str(product.late_fee),
                                              "due_date": str(i.due_date), "as_of": str(req.as_of)})
            oldest = min((i.due_date for i in installments if unpaid(i) and i.due_date < req.as_of), default=None)
            days = days_past_due(oldest, req.as_of) if loan.status == "active" else 0
            bucket = aging_bucket(days)
            if (days, bucket) != (loan.days_past_due, loan.aging_bucket):
                if bucket != loan.aging_bucket:
                    await audit.record(session, actor=f"system:{activity.info().workflow_id}", actor_id=None,
                                       action="loan.aging", entity_type="loan", entity_id=loan.id,
                                       before={"aging_bucket": loan.aging_bucket}, after={"aging_bucket": bucket,
                                                                                          "days_past_due": days})
                loan.days_past_due, loan.aging_bucket = days, bucket
                session.add(loan)
            # Days on which something changes: a grace period ends, the oldest unpaid due date ages into a bucket.
            upcoming = [i.due_date + timedelta(days=product.grace_days + 1) for i in installments
                        if unpaid(i) and i.late_fee_assessed_at is None]
            if oldest is not None:
                upcoming += [oldest + timedelta(days=start) for start in BUCKET_STARTS]
            later = [i.due_date for i in installments if i.number >= req.next_due and i.due_date > req.as_of]
            return ServicingState(
                status=loan.status, days_past_due=days, aging_bucket=bucket, late_fees_assessed=charged,
                due_numbers=[i.number for i in installments if i.number >= req.next_due and i.due_date <= req.as_of],
                next_due_date=min(later, default=None),
                next_check=min((day for day in upcoming if day > req.as_of), default=None))

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
            return AchChildPayment(
                payment_id=payment_id, kind=PaymentKind.ach_credit, amount=loan.amount,
                account_id=loan.deposit_account_id, external_account_id=external.id, org_id=loan.org_id,
                created_by=loan.applicant_id, idempotency_key=f"loan:{loan.id}:disbursement",
                memo=f"Loan {str(loan.id)[:8]} disbursement", notify_workflow_id=loan.workflow_id,
                notify_reference="disbursement",
                summary=f"Loan disbursement ${loan.amount:,.2f} to {external.institution_name} …{external.account_last4}")

    @activity.defn
    async def plan_auto_debit(self, req: AutoDebitInput) -> AchChildPayment | None:
        """The ACH debit for installment `number` on its due date: what it still owes (late fee included),
        from the member's bank account into the deposit account. None without auto-debit or when nothing is owed."""
        async with self.db.session() as session, session.begin():
            loan = await session.get(Loan, req.loan_id)
            row = (await session.exec(select(LoanInstallment).where(
                LoanInstallment.loan_id == req.loan_id, LoanInstallment.number == req.number).with_for_update())).first()
            if row is None or not loan.auto_debit or loan.status != "active":
                return None
            payment_id = uuid.uuid5(_LOAN_ACCOUNT_NS, f"loan:{loan.id}:auto-debit:{req.number}")
            if row.auto_debit_payment_id is None:
                if not unpaid(row):
                    return None  # paid ahead by hand
                row.auto_debit_payment_id = payment_id
                session.add(row)
            amount = (await session.execute(text("SELECT amount FROM payments WHERE id = :id"), {"id": payment_id})
                      ).scalar_one_or_none() or row.payment + row.late_fee - row.paid
            external = await session.get(ExternalAccount, loan.external_account_id)
            return AchChildPayment(
                payment_id=payment_id, kind=PaymentKind.ach_debit, amount=amount, account_id=loan.deposit_account_id,
                external_account_id=external.id, org_id=loan.org_id, created_by=loan.applicant_id,
                idempotency_key=f"loan:{loan.id}:auto-debit:{req.number}",
                memo=f"Loan {str(loan.id)[:8]} installment {req.number}", notify_workflow_id=loan.workflow_id,
                notify_reference=f"installment:{req.number}",
                summary=f"Loan installment {req.number} auto-debit ${amount:,.2f} from {external.institution_name} "
                        f"…{external.account_last4}")

    @activity.defn
    async def apply_auto_debit(self, req: AutoDebitApplied) -> RepaymentResult | None:
        """A completed auto-debit becomes a repayment from the deposit account, up to what the loan still owes
        (the rest stays on deposit). Keyed by the payment: applied once whatever retries happen."""
        async with self.db.session() as session:
            loan = await session.get(Loan, req.loan_id)
            payment = await session.get(Payment, req.payment_id)
            applicant = await session.get(User, loan.applicant_id)
            owed = (await session.execute(text(
                "SELECT coalesce(sum(payment + late_fee - paid), 0) FROM loan_installments WHERE loan_id = :l"),
                {"l": loan.id})).scalar_one()
        # A retry after the repayment was written finds it by its key inside apply_repayment, whatever amount.
        amount = min(payment.amount, owed)
        if amount <= 0 or payment.status != PaymentStatus.completed:
            return None
        return await self.apply_repayment(RepaymentInput(
            loan_id=loan.id, amount=amount, mode="installment", key=f"auto-debit:{payment.id}", paid_by=applicant.id,
            paid_by_email=f"system:auto-debit {payment.id}"))

    @activity.defn
    async def apply_repayment(self, req: RepaymentInput) -> RepaymentResult:
        entry_key = f"loan:{req.loan_id}:repayment:{req.paid_by}:{req.key}"
        async with self.db.session() as session, session.begin():
            loan = (await session.exec(select(Loan).where(Loan.id == req.loan_id).with_for_update())).one()
            done = (await session.execute(text("SELECT id FROM journal_entries WHERE idempotency_key = :k"),
                                          {"k": entry_key})).scalar_one_or_none()
            if done is not None:  # a retry: answer with what the first run wrote
                return await self._result(session, loan, done, req.amount)
            if loan.status != "active":
                raise refuse("loan_not_active", f"the loan is {loan.status}")
            await ledger.lock_accounts(session, [loan.deposit_account_id, loan.loan_account_id])
            today = date.today()
            if req.mode == "payoff" and req.amount != (payoff := await quote(session, loan, today)).amount:
                raise refuse("payoff_amount_mismatch", f"the payoff today is {payoff.amount}")
            available = (await ledger.balances(session, [loan.deposit_account_id]))[loan.deposit_account_id].available
            if available < req.amount:
                raise refuse("insufficient_funds", f"the deposit account has {available} available")
            installments = (await session.exec(select(LoanInstallment).where(LoanInstallment.loan_id == loan.id)
                                               .order_by(LoanInstallment.number))).all()
            principal = interest = fees = ZERO
            if req.mode == "payoff":
                principal = payoff.outstanding_principal
                fees = sum((max(ZERO, i.late_fee - i.paid) for i in installments), ZERO)
                interest = req.amount - principal - fees
                for i in installments:
                    i.paid, i.paid_at = i.payment + i.late_fee, datetime.now(timezone.utc)
                    session.add(i)
            elif req.mode == "prepayment":
                outstanding = await outstanding_principal(session, loan)
                if req.amount >= outstanding:
                    raise refuse("use_payoff", "this clears the loan: ask for a payoff quote and pay it instead")
                principal = req.amount
                paid = sum(1 for i in installments if i.paid >= i.payment + i.late_fee)
                product = await session.get(LoanProduct, loan.product_id)
                rest = remaining_schedule(terms_of(loan, product, loan.first_due_date), outstanding - principal, paid)
                future = {i.number: i for i in installments if i.number > paid}
                for new in rest.installments:
                    row = future[new.number]
                    row.payment, row.interest, row.principal, row.balance = (new.payment, new.interest,
                                                                             new.principal, new.balance)
                    session.add(row)
                for number in set(future) - {new.number for new in rest.installments}:
                    await session.delete(future[number])  # the schedule ended early
            else:
                remaining = req.amount
                for i in installments:
                    owed = i.payment + i.late_fee - i.paid
                    if remaining <= 0 or owed <= 0:
                        continue
                    take = min(owed, remaining)
                    # Within an installment: the late fee first, then interest, then principal.
                    already = i.paid
                    for part, size in (("fee", i.late_fee), ("interest", i.interest), ("principal", i.principal)):
                        covered = max(ZERO, min(size, already))
                        already -= covered
                        portion = min(size - covered, take)
                        take -= portion
                        remaining -= portion
                        i.paid += portion
                        if part == "fee":
                            fees += portion
                        elif part == "interest":
                            interest += portion
                        else:
                            principal += portion
                    if i.paid >= i.payment + i.late_fee:
                        i.paid_at = datetime.now(timezone.utc)
                    session.add(i)
                if remaining > 0:
                    raise refuse("overpayment", f"{remaining} more than every installment left: prepay or pay off")
            income = {}
            for code in (GL_INTEREST_INCOME, GL_FEE_INCOME):
                income[code] = (await session.execute(text("SELECT id FROM ledger_accounts WHERE code = :c"),
                                                      {"c": code})).scalar_one()
            legs = [ledger.Leg(loan.deposit_account_id, req.amount)]
            legs += [ledger.Leg(account, -amount) for account, amount in (
                (loan.loan_account_id, principal), (income[GL_INTEREST_INCOME], interest),
                (income[GL_FEE_INCOME], fees)) if amount]
            entry_id, _ = await ledger.post_entry(session, idempotency_key=entry_key, entry_type=f"loan_{req.mode}",
                                                  description=f"Loan {loan.id} {req.mode}", effective_date=today,
                                                  legs=legs)
            closed = await outstanding_principal(session, loan) == 0
            if closed:
                loan.status, loan.closed_at = "closed", datetime.now(timezone.utc)
                session.add(loan)
            await audit.record(session, actor=req.paid_by_email, actor_id=req.paid_by, action=f"loan.{req.mode}",
                               entity_type="loan", entity_id=loan.id,
                               after={"amount": str(req.amount), "principal": str(principal),
                                      "interest": str(interest), "fees": str(fees), "closed": closed})
            return await self._result(session, loan, entry_id, req.amount)

    async def _result(self, session, loan: Loan, entry_id: uuid.UUID, amount: Decimal) -> RepaymentResult:
        parts = dict((await session.execute(text(
            "SELECT coalesce(a.code, CASE WHEN a.id = :loan_account THEN 'principal' END), -p.amount "
            "FROM postings p JOIN ledger_accounts a ON a.id = p.account_id WHERE p.entry_id = :e AND p.amount < 0"),
            {"e": entry_id, "loan_account": loan.loan_account_id})).all())
        return RepaymentResult(loan_id=loan.id, amount=amount, principal=parts.get("principal", ZERO),
                               interest=parts.get(GL_INTEREST_INCOME, ZERO), fees=parts.get(GL_FEE_INCOME, ZERO),
                               outstanding_principal=await outstanding_principal(session, loan),
                               status=loan.status, journal_entry_id=entry_id)
