"""Task queues by urgency: money movement apart from routine work, each served by its own worker pool (worker.py
`--queues`), so a flood of reports, statements or reminders can never hold back a payment; and the approvals that
people wait on (a decision's answer) on a third, interactive queue, so a backlog of payments or of loans disbursing
cannot stand between an approver and the answer to their decision. A worker process of its own for it
(`--queues interactive`) gives it its own CPU share as well as its own slots.

Every place that starts a workflow (the API, activities, Schedules) asks `queue_for` here; a child workflow runs on
its parent's queue, and no workflow of one class starts a child of the other.

Money: payments, ACH batches, book transfers, loans (with their approvals and servicing), bill auto-pay (an ACH
debit), bank events, KYC reviews. Interactive: ApprovalWorkflow (a loan's or a KYC review's approval), with its
notifications, run where its parent's create-request activity says (ApprovalInput.task_queue): requests made before
this queue existed say nothing and run on their parent's queue, as they did. Routine: the bill run and its reminders, statements, emails sent again by an operator, webhooks out, backups
and retention, and interest accrual and posting, which write the ledger but are batch runs on a schedule with hours
of slack: at millions of accounts they are exactly the bulk that must not take a payment's worker slots, and their
writes are exactly-once whichever pool runs them.

The money queue is the TASK_QUEUE setting, unchanged, so workflows started before the split keep their queue and
workers; the routine queue is ROUTINE_TASK_QUEUE, by default TASK_QUEUE with `-routine` appended. Every worker
registers every workflow and activity: a routine workflow started on the money queue before the split still runs.
"""

from collections.abc import Callable
from enum import StrEnum

from core.config import Settings


class Urgency(StrEnum):
    money = "money"
    routine = "routine"
    interactive = "interactive"


QUEUE_OF_WORKFLOW: dict[str, Urgency] = {
    "AchPaymentWorkflow": Urgency.money,
    "AchBatchWorkflow": Urgency.money,
    "BookTransferWorkflow": Urgency.money,
    "ReversalWorkflow": Urgency.money,
    "TransactionApprovalWorkflow": Urgency.money,  # a checked deposit, withdrawal, transfer, entry or close
    "StandingInstructionRunWorkflow": Urgency.money,  # a scheduled book transfer  # posts a reversing entry; its approval is a child on the interactive queue
    "LoanWorkflow": Urgency.money,
    "ApprovalWorkflow": Urgency.interactive,  # a loan's or KYC review's approval: a child on this queue
    "BillAutopayWorkflow": Urgency.money,
    "GatewayPaymentWorkflow": Urgency.money,  # a card payment in: posts to the ledger, a member waits on its checkout
    "BankEventDeliveryWorkflow": Urgency.money,
    "BankEventSweepWorkflow": Urgency.money,
    "KycWorkflow": Urgency.money,  # it gates loans and debits; its review is an ApprovalWorkflow child
    "BillRunWorkflow": Urgency.routine,
    "TransactionImportWorkflow": Urgency.routine,  # a member's bulk load of their bank's lines: no money moves
    "LinkedImportWorkflow": Urgency.routine,  # the same from the linking provider's feed
    "BillReminderWorkflow": Urgency.routine,
    "MonthlyStatementsWorkflow": Urgency.routine,
    "DailyAccrualWorkflow": Urgency.routine,
    "InterestPostingWorkflow": Urgency.routine,
    "MonthEndPostingWorkflow": Urgency.routine,
    "EmailResendWorkflow": Urgency.routine,
    "BackupWorkflow": Urgency.routine,
    "RetentionWorkflow": Urgency.routine,
    "KycReverificationWorkflow": Urgency.routine,  # starts KYC workflows through the client, not as children
    "DocumentUploadWorkflow": Urgency.routine,
    "WebhookDispatchWorkflow": Urgency.routine,  # notifications to organizations' systems, not money movement
    "WebhookDeliveryWorkflow": Urgency.routine,
    "ReportRunWorkflow": Urgency.routine,  # reports: batch reads, never ahead of a payment
    "ScheduledReportWorkflow": Urgency.routine,
    "ReconciliationWorkflow": Urgency.routine,  # back-office matching; moves no money
    "ExportWorkflow": Urgency.routine,  # members' data exports: batch reads
    "MoneyEventsWorkflow": Urgency.routine,  # a member's budget and alert evaluation after their money moved
    "FxRatesRefreshWorkflow": Urgency.routine,  # exchange rates: daily, or on demand (one HTTP call; no money)
}


def queue_name(settings: Settings, urgency: Urgency) -> str:
    if urgency is Urgency.money:
        return settings.task_queue
    if urgency is Urgency.interactive:
        return settings.interactive_task_queue or f"{settings.task_queue}-interactive"
    return settings.routine_task_queue or f"{settings.task_queue}-routine"


def queue_for(settings: Settings, workflow_type: str | type | Callable) -> str:
    """The task queue a workflow of this type (its name, its class or its run method) is started on."""
    name = workflow_type if isinstance(workflow_type, str) else workflow_type.__qualname__.split(".")[0]
    return queue_name(settings, QUEUE_OF_WORKFLOW[name])


def parse_queues(text: str) -> list[Urgency]:
    """`money,routine,interactive` (worker.py --queues) as urgencies; a ValueError names an unknown one."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    known = ", ".join(Urgency)
    if not names:
        raise ValueError(f"--queues needs at least one of: {known}")
    try:
        return list(dict.fromkeys(Urgency(name) for name in names))
    except ValueError:
        raise ValueError(f"--queues {text!r}: each must be one of {known}") from None
