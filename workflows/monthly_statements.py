"""Monthly statements for every internal account: keyset batches of set-based SQL, each batch idempotent
(a statement row exists once per account and period), continue-as-new before the history grows large.
Scheduled as "monthly-statements" on the 1st; with no period it works on the month just ended."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.statements import StatementActivities
    from models.statements import StatementBatch, StatementRunInput, StatementRunResult, period_ended
    from workflows.schedule_time import previous_month


@workflow.defn
class MonthlyStatementsWorkflow:
    def __init__(self) -> None:
        self._period = ""
        self._accounts = 0
        self._written = 0
        self._done = False

    @workflow.run
    async def run(self, req: StatementRunInput) -> StatementRunResult:
        try:
            self._period = req.period or previous_month(req.timezone)
            ended = period_ended(self._period, workflow.now(), req.timezone)
        except (ValueError, KeyError) as exc:  # an unknown time zone: fail the run, don't retry its task forever
            raise ApplicationError(f"invalid input: {exc!r}", type="InvalidInput", non_retryable=True) from exc
        if not ended:
            raise ApplicationError(
                f"{self._period} is not over yet: a statement is written once, after the month",
                type="PeriodNotEnded",
                non_retryable=True,
            )
        self._accounts, self._written = req.accounts_done, req.statements_written
        after = req.after_account_id
        for _ in range(req.batches_per_run):  # ~6 history events a batch: 500 stay well inside the limits
            self._details()
            result = await workflow.execute_activity_method(
                StatementActivities.write_statements_batch,
                StatementBatch(
                    period=self._period,
                    timezone=req.timezone,
                    after_account_id=after,
                    limit=req.batch_size,
                    notify_owners=req.notify_owners,
                ),
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)),
            )
            self._accounts += result.accounts
            self._written += result.written
            after = result.last_account_id or after
            if result.accounts < req.batch_size:
                self._done = True
                self._details()
                return StatementRunResult(
                    period=self._period, accounts=self._accounts, statements_written=self._written
                )
        workflow.continue_as_new(
            req.model_copy(
                update={
                    "period": self._period,
                    "after_account_id": after,
                    "accounts_done": self._accounts,
                    "statements_written": self._written,
                }
            )
        )

    def _details(self) -> None:
        state = "done" if self._done else "writing"
        workflow.set_current_details(
            f"statements {self._period}: {state}, {self._accounts} accounts looked at, "
            f"{self._written} statements written"
        )

    @workflow.query
    def progress(self) -> StatementRunResult:
        return StatementRunResult(period=self._period, accounts=self._accounts, statements_written=self._written)
