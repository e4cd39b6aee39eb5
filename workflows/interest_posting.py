"""InterestPostingWorkflow (id `interest-posting-YYYY-MM`): posts a month's accrued interest to every account,
exactly once per account and period, at millions of accounts.

It posts only a month that is over (in `timezone`) and whose every day was accrued: a day the nightly accrual
missed (a worker down over midnight, a run the schedule skipped) is accrued first, by a DailyAccrualWorkflow child
with the id `interest-accrual-YYYY-MM-DD`, so no day's interest is lost.

Accounts go in keyset-ordered batches (by account id), each through one set-based SQL activity that writes the
batch's postings and balanced ledger entries in one transaction under unique constraints. Every
`continue_as_new_after` batches the workflow continues as new with the cursor and the running totals, so no
run's history grows large. A SIGKILL of the worker anywhere just retries the batch in flight: it writes nothing
twice and reports the same totals. At the end the summary (accounts, total) is stored once and emailed to the
bank-wide staff (core/recipients.py); each organization's operators are emailed their own organization's figures
only. Rounding: per account, the period's unrounded daily accruals summed, rounded half up to the cent once.
"""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.interest_posting import InterestPostingActivities, period_bounds
    from activities.notifications import NotificationActivities
    from finance.money import format_usd
    from models.interest import AccrualRunInput, InterestPostingInput, PostingBatch, PostingProgress, PostingSummary
    from models.notifications import NotifyUsers
    from workflows.daily_accrual import DailyAccrualWorkflow, accrual_workflow_id
    from workflows.schedule_time import local_today

# From this patch on, the bank-wide summary goes to bank-wide staff only (core/recipients.py), and each
# organization's operators get their organization's figures.
ORG_SUMMARIES_PATCH = "interest-posting-org-summaries"

BATCH_STEP: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=30),
    heartbeat_timeout=timedelta(seconds=10),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)),
)
DB_STEP: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=5),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)),
)


@workflow.defn
class InterestPostingWorkflow:
    def __init__(self) -> None:
        self._progress = PostingProgress()
        self._period = ""

    @workflow.query
    def progress(self) -> PostingProgress:
        return self._progress

    @workflow.run
    async def run(self, req: InterestPostingInput) -> PostingSummary:
        self._period = req.period
        if req.progress is None:  # the first run (a continued one has done this)
            await self._accrue_missing_days(req)
        batch_size, continue_after = req.batch_size, req.continue_as_new_after
        if req.progress is None or batch_size is None or continue_after is None:
            plan = await workflow.execute_activity_method(InterestPostingActivities.plan_posting, req.period, **DB_STEP)
            batch_size, continue_after = batch_size or plan.batch_size, continue_after or plan.continue_as_new_after
            self._progress = req.progress or PostingProgress(accounts_total=plan.accounts_total)
        else:
            self._progress = req.progress
        self._show()

        after, done = req.after, False
        for _ in range(continue_after):
            batch = await workflow.execute_activity_method(
                InterestPostingActivities.post_interest_batch,
                PostingBatch(period=req.period, after=after, batch_size=batch_size),
                **BATCH_STEP,
            )
            if batch.accounts:
                after = batch.last_account_id
                p = self._progress
                self._progress = PostingProgress(
                    accounts_done=p.accounts_done + batch.accounts,
                    accounts_total=max(p.accounts_total, p.accounts_done + batch.accounts),
                    posted=p.posted + batch.posted,
                    amount_posted=p.amount_posted + batch.amount,
                    batches=p.batches + 1,
                )
                self._show()
            if batch.accounts < batch_size:
                done = True
                break
        if not done:
            workflow.continue_as_new(
                InterestPostingInput(
                    period=req.period,
                    timezone=req.timezone,
                    batch_size=batch_size,
                    continue_as_new_after=continue_after,
                    after=after,
                    progress=self._progress,
                )
            )

        summary = await workflow.execute_activity_method(
            InterestPostingActivities.finish_posting, req.period, **DB_STEP
        )
        if summary.recipients:
            await workflow.execute_activity_method(
                NotificationActivities.notify_users,
                NotifyUsers(
                    kind="interest_posting",
                    template="interest_posting_summary",
                    context={
                        "period": summary.period,
                        "accounts": summary.accounts,
                        "total": format_usd(summary.total),
                        "accounts_seen": self._progress.accounts_done,
                        "batches": self._progress.batches,
                    },
                    entity_type="interest_posting",
                    entity_id=summary.period,
                    dedupe_key=f"interest-posting:{summary.period}",
                    user_ids=summary.recipients,
                ),
                start_to_close_timeout=timedelta(seconds=60),
            )
        # Runs before this patch told every operator the bank-wide figures (their histories replay without it).
        if workflow.patched(ORG_SUMMARIES_PATCH):
            await workflow.execute_activity_method(
                InterestPostingActivities.notify_org_summaries,
                summary.period,
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(minutes=2),
            )
        workflow.set_current_details(
            f"done: {summary.accounts} accounts posted, {format_usd(summary.total)} for {summary.period}"
        )
        return summary

    async def _accrue_missing_days(self, req: InterestPostingInput) -> None:
        last = period_bounds(req.period)[1]
        if local_today(req.timezone) <= last:
            raise ApplicationError(
                f"{req.period} is not over: its last day, {last}, must end and be accrued before the month posts",
                type="PeriodNotOver",
                non_retryable=True,
            )
        while missing := await workflow.execute_activity_method(
            InterestPostingActivities.unaccrued_days, req.period, **DB_STEP
        ):
            workflow.set_current_details(
                f"{req.period}: accruing first the days never accrued: " + ", ".join(map(str, missing))
            )
            elsewhere = False
            for day in missing:  # one at a time: each is a pass over every account
                try:
                    await workflow.execute_child_workflow(
                        DailyAccrualWorkflow.run,
                        AccrualRunInput(day=day, timezone=req.timezone),
                        id=accrual_workflow_id(day),
                        task_queue=workflow.info().task_queue,
                        static_summary=f"Interest accrual for {day}, missing before posting {req.period}",
                    )
                except WorkflowAlreadyStartedError:
                    elsewhere = True  # another posting run of the month is accruing it: look again shortly
            if elsewhere:
                await workflow.sleep(timedelta(seconds=5))

    def _show(self) -> None:
        p = self._progress
        workflow.set_current_details(
            f"{self._period}: {p.accounts_done}/{p.accounts_total} accounts, {p.posted} "
            f"posted, {format_usd(p.amount_posted)} in {p.batches} batches"
        )
