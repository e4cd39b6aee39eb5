"""An email of the outbox sent again by an operator (POST /operations/emails/{id}/resend), after the address was
fixed: the activity sends the row only while it is pending, under its lock, so it goes once whatever retries or
repeated requests happen."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.notifications import NotificationActivities
    from models.notifications import ResendEmail


@workflow.defn
class EmailResendWorkflow:
    @workflow.run
    async def run(self, req: ResendEmail) -> str:
        workflow.set_current_details(f"sending email {req.outbox_id} again")
        status = await workflow.execute_activity_method(
            NotificationActivities.send_outbox_email,
            req,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5)),
        )
        workflow.set_current_details(f"email {req.outbox_id}: {status}")
        return status
