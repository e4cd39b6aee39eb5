"""What the bank-event outbox does with an event that reaches a payment after its workflow has ended."""

import pytest

from activities.bank_events import closed_payment_verdict
from models.payments import Payment


def payment(status: str, presentments: int = 1) -> Payment:
    return Payment(status=status, presentments=presentments)  # type: ignore[call-arg]  # the fields the verdict reads


def test_a_return_of_the_completed_last_presentment_is_reversed_by_policy():
    assert closed_payment_verdict("entry.returned", 1, payment("completed")) is None
    assert closed_payment_verdict("entry.returned", 2, payment("completed", presentments=2)) is None


@pytest.mark.parametrize(
    "event_type, presentment, status, presentments, reason",
    [
        ("entry.settled", 1, "returned", 1, "a settlement for a payment already returned"),
        ("entry.settled", 1, "completed", 1, "a settlement for a payment already completed"),
        ("entry.returned", 1, "reversed", 1, "a return for a payment already reversed"),
        ("entry.returned", 1, "returned", 1, "a return for a payment already returned"),
        ("entry.returned", 1, "failed", 1, "a return for a payment already failed"),
        ("entry.returned", 1, "completed", 2, "an event of presentment 1; the payment is on presentment 2"),
        ("entry.returned", None, "completed", 1, "an event of presentment None; the payment is on presentment 1"),
    ],
)
def test_anything_else_goes_to_the_exception_list(event_type, presentment, status, presentments, reason):
    assert closed_payment_verdict(event_type, presentment, payment(status, presentments)) == reason
