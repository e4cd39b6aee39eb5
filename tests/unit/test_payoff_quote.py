"""The payoff quote of activities/loan_servicing.py, on installments as the servicing clock left them."""

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import cast

from activities.loan_servicing import payoff_quote
from finance.allocation import InstallmentBalance
from models.loans import Loan

# Only what the quote reads (a table model cannot be built without its mapper's session state).
LOAN = cast(
    Loan,
    SimpleNamespace(
        id=uuid.uuid4(), annual_rate=Decimal("0.12"), day_count="30/360", disbursed_at=datetime(2026, 11, 1, tzinfo=UTC)
    ),
)


def installment(number: int, due: date, fee: str = "0") -> InstallmentBalance:
    return InstallmentBalance(number, due, Decimal(fee), Decimal("1.00"), Decimal("100.00"))


def test_a_late_fee_charged_ahead_of_the_calendar_is_due_and_accrues_nothing_more():
    # Found by the chaos run: the fast servicing clock charged the first installment's late fee while the calendar
    # was a month before its due date; the quote raised "period ends before it starts" on every retry.
    today = date(2026, 12, 1)
    quote = payoff_quote(LOAN, [installment(1, date(2027, 1, 1), fee="15.00"), installment(2, date(2027, 2, 1))], today)
    assert quote.due_unpaid == Decimal("116.00")  # the first, with its fee
    assert quote.accrued_interest == Decimal("0")
    assert quote.amount == Decimal("216.00")


def test_interest_accrues_from_the_last_due_date_to_the_day():
    today = date(2026, 12, 16)
    quote = payoff_quote(LOAN, [installment(1, date(2026, 12, 1)), installment(2, date(2027, 1, 1))], today)
    assert quote.accrued_interest == Decimal("0.50")  # 100.00 at 12% for 15 days of 30/360
    assert quote.amount == Decimal("101.00") + Decimal("100.00") + Decimal("0.50")
