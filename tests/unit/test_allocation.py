"""Where a repayment goes (finance/allocation.py): worked cases, then properties over random schedules."""

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from finance.allocation import COMPONENTS, Allocation, InstallmentBalance, allocate, balances, principal_owed, totals

D = Decimal


def installment(number: int, fee="0.00", interest="10.00", principal="90.00") -> InstallmentBalance:
    return InstallmentBalance(number, date(2026, 1, 1) + timedelta(days=30 * number), D(fee), D(interest), D(principal))


def test_a_late_fee_after_a_partial_payment_is_paid_as_a_fee_not_principal():
    """The defect of issue 9 A4: 50 paid (10 interest, 40 principal), then a 25 fee, then the remaining 75."""
    first, _ = allocate(D("50.00"), [installment(1)])
    assert first == [Allocation(1, "interest", D("10.00")), Allocation(1, "principal", D("40.00"))]
    fee_charged = installment(1, fee="25.00")  # the fee comes later; what was booked stays booked
    [now] = balances([fee_charged], first)
    assert (now.owed_of("fee"), now.owed_of("interest"), now.owed_of("principal")) == (D("25.00"), 0, D("50.00"))
    rest, left = allocate(D("75.00"), [now])
    assert totals(rest) == {"fee": D("25.00"), "interest": D("0.00"), "principal": D("50.00")} and left == 0
    [done] = balances([fee_charged], first + rest)
    assert done.is_paid and done.paid_of("principal") == D("90.00") and done.paid_total == D("125.00")


def test_oldest_installment_first_and_the_rest_is_left_over():
    split, left = allocate(D("250.00"), [installment(2), installment(1, fee="15.00")])
    assert [(a.number, a.component) for a in split] == [
        (1, "fee"),
        (1, "interest"),
        (1, "principal"),
        (2, "interest"),
        (2, "principal"),
    ]
    assert left == D("35.00")


def test_a_reversal_makes_the_installment_owe_again():
    paid, _ = allocate(D("100.00"), [installment(1)])
    reversed_ = [Allocation(a.number, a.component, -a.amount) for a in paid]
    [again] = balances([installment(1)], paid + reversed_)
    assert again.owed == D("100.00") and not again.is_paid and not again.started
    assert principal_owed([again]) == D("90.00")


money = st.decimals(min_value=0, max_value=2000, places=2, allow_nan=False, allow_infinity=False)


@st.composite
def schedules(draw):
    """Installments with random parts and random payments already allocated to them (in the allocation order)."""
    count = draw(st.integers(1, 6))
    rows = [
        installment(n, fee=str(draw(money)), interest=str(draw(money)), principal=str(draw(money)))
        for n in range(1, count + 1)
    ]
    paid_before, _ = allocate(draw(money), rows)
    return balances(rows, paid_before)


@given(schedules(), money)
def test_an_allocation_never_exceeds_what_is_owed_and_accounts_for_every_cent(owing, amount):
    split, left = allocate(amount, owing)
    assert sum((a.amount for a in split), D(0)) + left == amount
    assert all(a.amount > 0 for a in split)
    by_number = {i.number: i for i in owing}
    for a in split:
        assert a.amount <= by_number[a.number].owed_of(a.component)
    total_owed = sum((i.owed for i in owing), D(0))
    assert left == max(D(0), amount - total_owed)


@given(schedules(), money)
def test_money_only_reaches_a_part_once_everything_before_it_is_covered(owing, amount):
    split, _ = allocate(amount, owing)
    after = balances(owing_as_scheduled(owing), previous_allocations(owing) + split)
    order = [(i.number, c) for i in after for c in COMPONENTS]
    reached = {(a.number, a.component) for a in split}
    by_number = {i.number: i for i in after}
    for position, (number, component) in enumerate(order):
        if (number, component) in reached:
            assert all(by_number[n].owed_of(c) == 0 for n, c in order[:position])


@given(schedules(), money)
def test_the_principal_still_owed_drops_by_exactly_the_principal_allocated(owing, amount):
    split, _ = allocate(amount, owing)
    after = balances(owing_as_scheduled(owing), previous_allocations(owing) + split)
    assert principal_owed(owing) - principal_owed(after) == totals(split)["principal"]


def owing_as_scheduled(owing: list[InstallmentBalance]) -> list[InstallmentBalance]:
    return [InstallmentBalance(i.number, i.due_date, i.fee, i.interest, i.principal) for i in owing]


def previous_allocations(owing: list[InstallmentBalance]) -> list[Allocation]:
    return [Allocation(i.number, c, i.paid_of(c)) for i in owing for c in COMPONENTS if i.paid_of(c)]
