"""Closing an internal account (soft: the row stays). Nothing may post into a closed account (the database refuses
it, core/ledger.PostingToClosedAccount), so an account closes only when nothing is left to post to it:

1. no payment in flight from or to it (ACH or book, not in a final status): its postings, holds and returns
   would land on a closed account;
2. no loan, not ended, that pays into it or draws from it (disbursement, repayments);
3. a zero balance and no active hold;
4. no interest owed to it: every day it held money accrued, and every month with accruals that would post a cent
   posted (month-end posts on the 1st; the member then moves that interest out, and the account closes).

Not blocking: a completed ACH payment still inside its late-return window. A late return posts its reversal into
the closed account anyway (an `ach_return` entry is the one the database lets through): the bank has taken the
money back, and the books must say so; the account then shows what is owed, for an operator.
"""

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from core import ledger
from core.interest import FIRST_UNACCRUED_DAY, UNPOSTED_INTEREST
from models.payments import FINAL_STATUSES

LOAN_ENDED = ("closed", "declined", "rejected", "withdrawn", "failed")


@dataclass(frozen=True)
class Blocker:
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


async def lock_for_closing(session: AsyncSession, account_id: uuid.UUID) -> None:
    """FOR UPDATE, the one lock a new posting's foreign-key check (FOR KEY SHARE) waits for: a posting committed
    before is seen by the checks below, one after sees the account closed and is refused."""
    await session.execute(text("SELECT id FROM ledger_accounts WHERE id = :id FOR UPDATE"), {"id": account_id})


async def closing_blocker(session: AsyncSession, account_id: uuid.UUID) -> Blocker | None:
    """The first reason the account cannot close now, or None. Call under lock_for_closing."""
    payments = (
        (
            await session.execute(
                text(
                    "SELECT id FROM payments WHERE (from_account_id = :id OR to_account_id = :id) AND status <> ALL(:final) "
                    "ORDER BY created_at"
                ),
                {"id": account_id, "final": sorted(str(s) for s in FINAL_STATUSES)},
            )
        )
        .scalars()
        .all()
    )
    if payments:
        return Blocker(
            "payments_in_flight",
            "payments to or from the account are still on their way; close it once they have ended",
            {"payment_ids": [str(p) for p in payments]},
        )
    loans = (
        (
            await session.execute(
                text(
                    "SELECT id FROM loans WHERE (deposit_account_id = :id OR loan_account_id = :id) AND status <> ALL(:ended) "
                    "ORDER BY created_at"
                ),
                {"id": account_id, "ended": list(LOAN_ENDED)},
            )
        )
        .scalars()
        .all()
    )
    if loans:
        return Blocker(
            "loans_open",
            "a loan pays into or draws from the account; close it once the loan has ended",
            {"loan_ids": [str(loan) for loan in loans]},
        )
    balance = (await ledger.balances(session, [account_id])).get(account_id)
    if balance and (balance.ledger != 0 or balance.held != 0):
        return Blocker(
            "balance_not_zero",
            "move the balance out and release holds before closing",
            {"ledger_balance": balance.ledger, "held": balance.held},
        )
    unposted = (await session.execute(UNPOSTED_INTEREST, {"account": account_id})).all()
    unaccrued_from = (await session.execute(FIRST_UNACCRUED_DAY, {"account": account_id})).scalar_one()
    if unposted or unaccrued_from:
        return Blocker(
            "interest_not_posted",
            "the account is owed interest that month-end has not posted yet; "
            "close it once that interest is posted and moved out",
            {
                "unaccrued_from": unaccrued_from,
                "unposted": [{"period": row.period, "accrued": row.accrued} for row in unposted],
            },
        )
    return None
