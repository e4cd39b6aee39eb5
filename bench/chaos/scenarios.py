"""What each process of the run must end in. The ACH scenarios are the sandbox bank's (sandbox/odfi.py: the cents
of the amount pick the outcome), as they end when the bank delivers each file's events newest first: a return is
then heard before its entry's settlement, so the late R10 (.10) returns the payment rather than reversing it (unless it comes after the return window: then
it reverses it, as a return after completion does), and
.31's return after settlement re-presents it as a return before settlement would."""

from dataclasses import dataclass


@dataclass(frozen=True)
class AchScenario:
    kind: str  # ach_debit or ach_credit
    cents: str
    status: str  # the payment's final status
    presentments: int
    return_code: str | None = None
    external: str | None = None  # what the return does to the external account: disabled, debits_blocked
    # The status it ends in when the bank's return comes after the payment's return window has closed (a slow
    # machine, the webhook delivery retried through faults): a return after completion reverses it (PRODUCT §4.3).
    late: str | None = None

    @property
    def name(self) -> str:
        return f"{self.kind.removeprefix('ach_')}.{self.cents}"

    @property
    def own_external_account(self) -> bool:
        """Its return changes the external account: it gets one of its own, so no other payment's outcome
        depends on the order the returns come in."""
        return self.external is not None


ACH_SCENARIOS = [
    AchScenario("ach_debit", "00", "completed", 1),
    AchScenario("ach_credit", "00", "completed", 1),
    AchScenario("ach_debit", "01", "returned", 3, "R01"),  # R01 every time: re-presented twice, then returned
    AchScenario("ach_debit", "11", "completed", 2, "R01"),  # R01, then settles when re-presented
    AchScenario("ach_debit", "09", "returned", 3, "R09"),
    AchScenario("ach_debit", "31", "completed", 2, "R01"),  # settles, R01, settles for good when re-presented
    AchScenario("ach_debit", "32", "returned", 3, "R01"),  # settles then R01, every presentment
    AchScenario("ach_debit", "02", "returned", 1, "R02", "disabled"),
    AchScenario("ach_debit", "03", "returned", 1, "R03", "disabled"),
    AchScenario("ach_debit", "04", "returned", 1, "R04", "disabled"),
    AchScenario("ach_debit", "05", "returned", 1, "R05", "debits_blocked"),
    AchScenario("ach_debit", "07", "returned", 1, "R07", "debits_blocked"),
    AchScenario("ach_debit", "29", "returned", 1, "R29", "debits_blocked"),
    AchScenario("ach_debit", "10", "returned", 1, "R10", "debits_blocked", late="reversed"),
    AchScenario("ach_debit", "20", "failed", 1, "R20"),
]


def ach_plan(n: int) -> list[tuple[AchScenario, str]]:
    """n payments, every scenario in turn, each with its amount (dollars vary, the cents are the scenario's)."""
    return [
        (scenario, f"{1 + i % 400}.{scenario.cents}")
        for i, scenario in ((i, ACH_SCENARIOS[i % len(ACH_SCENARIOS)]) for i in range(n))
    ]


def net_effect(kind: str, status: str, amount) -> object:
    """What a finished ACH payment leaves on its internal account: the amount in (debit) or out (credit) once it
    completed, nothing once it was returned, failed or reversed."""
    if status != "completed":
        return 0
    return amount if kind == "ach_debit" else -amount


# Bills with auto-pay: whole dollars are paid on settlement; .01 comes back R01 three times, and the bill (due in
# the future) is upcoming again.
BILL_CENTS = {"00": "paid", "01": "upcoming"}
