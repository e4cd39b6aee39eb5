"""A book transfer between two internal accounts: immediate, one balanced journal entry."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.payments import PaymentActivities
    from core import search_attributes as sa
    from models.payments import BookTransferInput, PaymentKind, PaymentOutcome, PaymentStatus


@workflow.defn
class BookTransferWorkflow:
    def __init__(self) -> None:
        self._outcome: PaymentOutcome | None = None
        self._status = PaymentStatus.created

    @workflow.run
    async def run(self, req: BookTransferInput) -> PaymentOutcome:
        self._set_status(PaymentStatus.created, "posting the journal entry")
        self._outcome = await workflow.execute_activity_method(
            PaymentActivities.post_book_transfer,
            req,
            # Short: a worker that dies mid-activity is noticed after this, and the retry finds the work done or not.
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
            ),
        )
        detail = (
            f"completed: journal entry {self._outcome.journal_entry_id}"
            if self._outcome.status == PaymentStatus.completed
            else f"failed: {self._outcome.failure_code}: {self._outcome.failure_reason}"
        )
        self._set_status(PaymentStatus(self._outcome.status), detail)
        workflow.logger.info("book transfer %s", detail, extra={"payment_id": str(req.payment_id)})
        return self._outcome

    @workflow.query
    def status(self) -> str:
        return self._status

    @workflow.query
    def outcome(self) -> PaymentOutcome | None:
        return self._outcome

    def _set_status(self, status: PaymentStatus, detail: str) -> None:
        self._status = status
        workflow.upsert_search_attributes(
            [sa.PAYMENT_STATUS.value_set(status), sa.PAYMENT_KIND.value_set(PaymentKind.book)]
        )
        workflow.set_current_details(f"{status}: {detail}")
