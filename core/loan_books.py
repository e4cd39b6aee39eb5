"""A loan's installments and the allocations of its repayments, read and written for the API and the activities.

What an installment has been paid, and what it still owes, is derived from the stored allocations
(finance/allocation.py), never kept as a running total that a later fee could re-split."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import text
from sqlmodel import col, select

from finance.allocation import Allocation, InstallmentBalance, balances
from models.loans import LoanInstallment


async def installment_rows(session, loan_id: uuid.UUID, lock: bool = False) -> list[LoanInstallment]:
    statement = select(LoanInstallment).where(LoanInstallment.loan_id == loan_id).order_by(col(LoanInstallment.number))
    return list((await session.exec(statement.with_for_update() if lock else statement)).all())


async def allocations(session, loan_id: uuid.UUID) -> list[Allocation]:
    """Every allocation of the loan, summed per installment and component (reversals net out)."""
    rows = await session.execute(
        text(
            "SELECT number, component, sum(amount) FROM loan_allocations WHERE loan_id = :l GROUP BY number, component"
        ),
        {"l": loan_id},
    )
    return [Allocation(number, component, amount) for number, component, amount in rows if amount != 0]


def as_balance(row: LoanInstallment) -> InstallmentBalance:
    return InstallmentBalance(row.number, row.due_date, row.late_fee, row.interest, row.principal)


async def installment_balances(
    session, loan_id: uuid.UUID, rows: list[LoanInstallment] | None = None
) -> list[InstallmentBalance]:
    """The installments with what has been paid to each part (rows: already loaded, e.g. locked)."""
    if rows is None:
        rows = await installment_rows(session, loan_id)
    return balances([as_balance(row) for row in rows], await allocations(session, loan_id))


async def record_repayment(
    session,
    *,
    loan_id: uuid.UUID,
    entry_id: uuid.UUID,
    mode: str,
    amount: Decimal,
    split: list[Allocation],
    payment_id: uuid.UUID | None = None,
    reverses_entry_id: uuid.UUID | None = None,
) -> None:
    """The repayment (or reversal) booked as `entry_id`, with its allocations; written once per entry."""
    inserted = (
        await session.execute(
            text(
                """INSERT INTO loan_repayments (entry_id, loan_id, mode, amount, payment_id, reverses_entry_id)
           VALUES (:entry, :loan, :mode, :amount, :payment, :reverses) ON CONFLICT DO NOTHING RETURNING entry_id"""
            ),
            {
                "entry": entry_id,
                "loan": loan_id,
                "mode": mode,
                "amount": amount,
                "payment": payment_id,
                "reverses": reverses_entry_id,
            },
        )
    ).first()
    if inserted is None or not split:
        return
    await session.execute(
        text(
            """INSERT INTO loan_allocations (loan_id, entry_id, number, component, amount)
           SELECT :loan, :entry, n, c, a
           FROM unnest(CAST(:numbers AS int[]), CAST(:components AS text[]), CAST(:amounts AS numeric[])) AS s(n, c, a)
           ON CONFLICT ON CONSTRAINT loan_allocations_once DO NOTHING"""
        ),
        {
            "loan": loan_id,
            "entry": entry_id,
            "numbers": [a.number for a in split],
            "components": [a.component for a in split],
            "amounts": [a.amount for a in split],
        },
    )


async def mark_paid(session, rows: list[LoanInstallment], now_owing: list[InstallmentBalance]) -> None:
    """paid_at follows the balances: set when an installment becomes fully paid, cleared when it owes again."""
    by_number = {b.number: b for b in now_owing}
    for row in rows:
        balance = by_number.get(row.number)
        if balance is None:
            continue
        if balance.is_paid and row.paid_at is None:
            row.paid_at = datetime.now(UTC)
            session.add(row)
        elif not balance.is_paid and row.paid_at is not None:
            row.paid_at = None
            session.add(row)
