"""Repayments of an active loan: to the next installments (late fees, then interest, then principal), as a
partial prepayment (principal only; the rest of the schedule is recomputed, same term, lower installments),
or as the payoff (what the quote says to the day), which closes the loan.

Each repayment is one balanced journal entry keyed by the caller's Idempotency-Key:
  debit the member's deposit account; credit the loan account (principal), interest income, fee income."""

import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import text
from sqlmodel import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.loans import terms_of
from core import audit, ledger
from core.db import Database
from finance.amortization import payoff_amount, remaining_schedule
from finance.daycount import DayCount
from models.ledger import GL_FEE_INCOME, GL_INTEREST_INCOME
from models.loans import Loan, LoanInstallment, LoanProduct, PayoffQuote, RepaymentInput, RepaymentResult

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


class LoanServicingActivities:
    def __init__(self, db: Database):
        self.db = db

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
