"""Where a loan repayment goes, pure: installments oldest first; within one, its late fee, then its interest,
then its principal. Each repayment's split is stored (per installment and component) when it is booked and
never recomputed, so a fee charged later only changes what is still owed, not money already booked.

An installment's balance is its scheduled parts (and late fee) minus what has been allocated to each part:
allocations are signed, a reversed repayment allocates the opposite amounts."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

ZERO = Decimal("0.00")
COMPONENTS = ("fee", "interest", "principal")  # the order money goes to, within an installment


@dataclass(frozen=True)
class Allocation:
    number: int  # the installment
    component: str  # fee | interest | principal
    amount: Decimal  # negative when a reversal takes it back


@dataclass(frozen=True)
class InstallmentBalance:
    """One installment as scheduled, with what has been allocated to each of its parts."""

    number: int
    due_date: date
    fee: Decimal
    interest: Decimal
    principal: Decimal
    paid: dict[str, Decimal] = field(default_factory=dict)  # by component; missing means nothing

    def paid_of(self, component: str) -> Decimal:
        return self.paid.get(component, ZERO)

    def owed_of(self, component: str) -> Decimal:
        return getattr(self, component) - self.paid_of(component)

    @property
    def owed(self) -> Decimal:
        return sum((self.owed_of(c) for c in COMPONENTS), ZERO)

    @property
    def paid_total(self) -> Decimal:
        return sum((self.paid_of(c) for c in COMPONENTS), ZERO)

    @property
    def is_paid(self) -> bool:
        return self.owed <= 0

    @property
    def started(self) -> bool:
        """Something has been paid towards it."""
        return any(self.paid_of(c) != 0 for c in COMPONENTS)


def balances(installments: Iterable[InstallmentBalance], allocations: Iterable[Allocation]) -> list[InstallmentBalance]:
    """The installments (as scheduled, nothing paid) with the allocations summed onto them."""
    paid: dict[int, dict[str, Decimal]] = {}
    for a in allocations:
        parts = paid.setdefault(a.number, {})
        parts[a.component] = parts.get(a.component, ZERO) + a.amount
    return [
        InstallmentBalance(i.number, i.due_date, i.fee, i.interest, i.principal, paid.get(i.number, {}))
        for i in sorted(installments, key=lambda i: i.number)
    ]


def allocate(amount: Decimal, installments: Sequence[InstallmentBalance]) -> tuple[list[Allocation], Decimal]:
    """Splits `amount` over what the installments still owe, oldest first, fee then interest then principal.
    Returns the allocations and what is left once everything owed is covered."""
    if amount < 0:
        raise ValueError(f"a repayment is not negative, got {amount}")
    allocations: list[Allocation] = []
    remaining = amount
    for installment in sorted(installments, key=lambda i: i.number):
        for component in COMPONENTS:
            if remaining <= 0:
                return allocations, remaining
            portion = min(installment.owed_of(component), remaining)
            if portion > 0:
                allocations.append(Allocation(installment.number, component, portion))
                remaining -= portion
    return allocations, remaining


def totals(allocations: Iterable[Allocation]) -> dict[str, Decimal]:
    """The sum per component (every component present)."""
    sums = dict.fromkeys(COMPONENTS, ZERO)
    for a in allocations:
        sums[a.component] += a.amount
    return sums


def principal_owed(installments: Iterable[InstallmentBalance]) -> Decimal:
    """Principal scheduled and not yet paid: what the loan's receivable account must hold."""
    return sum((i.owed_of("principal") for i in installments), ZERO)
