"""A reminder sent by hand (POST /bills/{id}/send-reminder): the payer is told in-app and by email, once per
request (the dedupe key is the request's), whatever retries happen."""

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.notifications import NotificationActivities
    from models.notifications import NotifyUsers


@workflow.defn
class BillReminderWorkflow:
    @workflow.run
    async def run(self, req: NotifyUsers) -> int:
        workflow.set_current_details(f"reminding {len(req.user_ids)} payer(s) of bill {req.entity_id}")
        sent = await workflow.execute_activity_method(
            NotificationActivities.notify_users, req, start_to_close_timeout=timedelta(seconds=60)
        )
        workflow.set_current_details(f"sent to {sent} payer(s)")
        return sent
