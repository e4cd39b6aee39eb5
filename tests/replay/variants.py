"""A workflow changed the way a careless edit would (a step added before the first activity, unpatched), under the
name of the real one: the replay test proves such a change is caught."""

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.payments import BookTransferInput, PaymentOutcome


@workflow.defn(name="BookTransferWorkflow")
class UnpatchedBookTransferWorkflow:
    @workflow.run
    async def run(self, req: BookTransferInput) -> PaymentOutcome:
        await workflow.sleep(timedelta(seconds=1))  # new, and not behind workflow.patched
        return PaymentOutcome(payment_id=req.payment_id, status="completed")
