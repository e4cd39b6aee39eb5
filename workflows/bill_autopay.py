"""Auto-pay of one bill for one due date (`bill-autopay-<bill>-<due date>`, started by the daily run): an ACH
debit from the payer's external account, run as an abandoned child (workflows/ach_child.py) that signals each
step. Settled: the bill is paid. Returned and to be re-presented (even after it settled): the bill is processing
again until the next presentment settles. Returned, failed or canceled (or reversed by a late return): the bill
is due again, the payer is told, and the workflow ends. After completion it listens for a late return until the
late-return window has closed, then ends."""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.bills import BillActivities
    from activities.notifications import NotificationActivities
    from finance.money import format_usd
    from models.bills import AutopayInput, AutopayOutcome
    from models.payments import AchChildPayment, PaymentKind, PaymentProgress
    from workflows.ach_child import start_ach_payment

DB_STEP: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=15),
    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)),
)
PAID = ("settled", "completed")


@workflow.defn
class BillAutopayWorkflow:
    def __init__(self) -> None:
        self._progress: list[PaymentProgress] = []
        self._seen = 0
        self._state = "starting"

    @workflow.signal
    def payment_progress(self, progress: PaymentProgress) -> None:
        self._progress.append(progress)

    @workflow.query
    def state(self) -> str:
        return self._state

    @workflow.run
    async def run(self, req: AutopayInput) -> str:
        start = await workflow.execute_activity_method(BillActivities.begin_autopay, req, **DB_STEP)
        if start.payment_id is None:
            self._set(f"skipped: {start.reason}")
            return self._state
        await start_ach_payment(
            AchChildPayment(
                payment_id=start.payment_id,
                kind=PaymentKind.ach_debit,
                amount=start.amount,
                account_id=start.account_id,
                external_account_id=start.external_account_id,
                org_id=start.org_id,
                created_by=start.payer_id,
                idempotency_key=f"bill-autopay:{req.bill_id}:{req.due_date.isoformat()}",
                memo=f"Bill {start.payee_name} due {req.due_date}",
                summary=f"Auto-pay of bill {req.bill_id}: ACH debit {format_usd(start.amount)}",
                notify_workflow_id=workflow.info().workflow_id,
                notify_reference=f"bill:{req.bill_id}",
            )
        )
        self._set(f"ACH debit payment-{start.payment_id} of {format_usd(start.amount)} in flight")

        paid, completed = False, False
        while True:
            # After completion only a late return can still undo the payment: listen until its window closes.
            timeout = timedelta(seconds=req.late_return_window_seconds + 60) if completed else None
            try:
                await workflow.wait_condition(lambda: len(self._progress) > self._seen, timeout=timeout)
            except TimeoutError:
                return self._state
            progress = self._progress[self._seen]
            self._seen += 1
            outcome = AutopayOutcome(
                bill_id=req.bill_id,
                due_date=req.due_date,
                payment_id=start.payment_id,
                status=progress.status,
                return_code=progress.return_code,
                failure_reason=progress.failure_reason,
                represent=progress.represent,
                presentment=progress.presentment,
            )
            if progress.represent:
                if paid:
                    await workflow.execute_activity_method(BillActivities.finish_autopay, outcome, **DB_STEP)
                paid = completed = False
                self._set(
                    f"processing: payment-{start.payment_id} returned {progress.return_code}; "
                    f"presentment {progress.presentment + 1} on its way"
                )
                continue
            if progress.status in PAID:
                completed = completed or progress.status == "completed"
                if not paid:
                    await workflow.execute_activity_method(BillActivities.finish_autopay, outcome, **DB_STEP)
                    paid = True
                    self._set(f"paid: payment-{start.payment_id} {progress.status}")
                continue
            notice = await workflow.execute_activity_method(BillActivities.finish_autopay, outcome, **DB_STEP)
            if notice is not None:
                await workflow.execute_activity_method(
                    NotificationActivities.notify_users, notice, start_to_close_timeout=timedelta(seconds=60)
                )
            self._set(f"due again: payment-{start.payment_id} {progress.status} {progress.return_code or ''}".strip())
            return self._state

    def _set(self, state: str) -> None:
        self._state = state
        workflow.set_current_details(state)
