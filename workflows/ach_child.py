"""An ACH payment started by another workflow (a loan's disbursement or auto-debit, a bill's auto-pay).

The payment is a workflow of its own, `payment-<id>`, abandoned rather than ended when its parent closes or
continues as new: a payment in flight always runs to its end. It tells the parent of each step by the
`payment_progress` signal (models.payments.PaymentProgress), addressed by workflow id, so the parent's
latest run hears it."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.ach import AchActivities
    from core import search_attributes as sa
    from models.payments import AchChildPayment, PaymentKind, PaymentStatus
    from workflows.ach_payment import AchPaymentWorkflow

# Statuses after which a parent learns of the payment.
PROGRESS_STATUSES = frozenset(
    {
        PaymentStatus.settled,
        PaymentStatus.completed,
        PaymentStatus.failed,
        PaymentStatus.returned,
        PaymentStatus.reversed,
        PaymentStatus.canceled,
    }
)


async def start_ach_payment(req: AchChildPayment) -> str:
    """Creates the payment row and starts its workflow; a payment already started is left running.
    Returns the payment's workflow id."""
    ach_input = await workflow.execute_activity_method(
        AchActivities.create_ach_payment,
        req,
        start_to_close_timeout=timedelta(seconds=15),
        retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)),
    )
    workflow_id = f"payment-{req.payment_id}"
    try:
        await workflow.start_child_workflow(
            AchPaymentWorkflow.run,
            ach_input,
            id=workflow_id,
            task_queue=workflow.info().task_queue,
            parent_close_policy=ParentClosePolicy.ABANDON,
            static_summary=req.summary
            or f"{'ACH debit' if req.kind == PaymentKind.ach_debit else 'ACH credit'} ${req.amount:,.2f}",
            static_details=f"payment {req.payment_id}\n{req.memo}",
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.PAYMENT_STATUS, PaymentStatus.created.value),
                    SearchAttributePair(sa.PAYMENT_KIND, req.kind.value),
                    SearchAttributePair(sa.PAYMENT_AMOUNT, float(req.amount)),
                    SearchAttributePair(sa.ACCOUNT_ID, str(req.account_id)),
                    SearchAttributePair(sa.ORG_ID, str(req.org_id)),
                ]
            ),
        )
    except WorkflowAlreadyStartedError:
        pass  # started by an earlier run of the parent
    return workflow_id
