"""A loan, from the application to its last repayment: eligibility, credit check at the bureau, the schedule, the
approval (a child workflow), the agreement PDF, the disbursement (an ACH credit child payment to the member's
bank account), then servicing: an ACH debit child payment on each due date, late fees after the grace days,
arrears and aging buckets, manual repayments, prepayments and the payoff, until the loan is closed (and, while
an auto-debit can still be returned late, a little after: such a return undoes its repayment and reopens it).
Withdrawal is possible until it is approved. Terms a schedule cannot be built on fail the loan; a bureau that
refuses our own credentials keeps it waiting in credit_check (operators told) until the bureau answers."""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.credit import ACCESS_DENIED, CreditActivities
    from activities.loan_servicing import LoanServicingActivities
    from activities.loans import LoanActivities
    from activities.notifications import NotificationActivities
    from core import search_attributes as sa
    from finance.servicing import ServicingClock
    from models.approvals import ApprovalProgress, ApprovalState
    from models.credit import CreditCheckInput, CreditReport
    from models.loans import (
        AutoDebitApplied,
        AutoDebitInput,
        CreditCheckBlocked,
        LoanInput,
        LoanStatus,
        LoanStatusUpdate,
        LoanSummary,
        RepaymentInput,
        RepaymentResult,
        ServicingCheck,
        ServicingState,
    )
    from models.payments import PaymentProgress
    from workflows.ach_child import start_ach_payment
    from workflows.approval import ApprovalWorkflow

STEP: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)),
)
# Repayments each add a few events; a 30-year loan continues as new long before its history grows large.
CONTINUE_AS_NEW_AFTER = 100
REPAYMENT_MODES = ("installment", "prepayment", "payoff")
# Until approval a loan can be withdrawn; a withdrawal asked for meanwhile answers once it has left these.
WITHDRAWABLE = (
    LoanStatus.submitted,
    LoanStatus.checking_eligibility,
    LoanStatus.credit_check,
    LoanStatus.pending_approval,
    LoanStatus.info_requested,
)
DECLINED_BY_APPROVAL = {
    "rejected": LoanStatus.rejected,
    "declined": LoanStatus.declined,
    "on_hold": LoanStatus.on_hold,
    "withdrawn": LoanStatus.withdrawn,
}
# A bureau refusing our credentials is tried again after these waits, doubling (the fix is an operator's).
CREDIT_RETRY_FIRST, CREDIT_RETRY_MAX = timedelta(seconds=1), timedelta(minutes=5)
# A late return reaches the loan after the ACH workflow has recorded it and told the org admins: some slack.
LATE_RETURN_SLACK = timedelta(minutes=5)


def refusal(error: ActivityError, *types: str) -> ApplicationError | None:
    """The activity's own ApplicationError when it is one of `types`."""
    cause = error.cause
    return cause if isinstance(cause, ApplicationError) and cause.type in types else None


@workflow.defn
class LoanWorkflow:
    def __init__(self) -> None:
        self._status = LoanStatus.submitted
        self._withdraw_requested = False
        self._approval_id: str | None = None
        self._approval_started = False
        self._repayments = 0
        self._payments: list[PaymentProgress] = []  # child ACH payments' steps, not yet handled
        self._recheck = False
        self._arrears = ""
        self._becoming: LoanStatus | None = None  # the status being written to the loan's row (_change)

    @workflow.signal
    async def approval_progress(self, progress: ApprovalProgress) -> None:
        """The approval moved: the loan's row and search attributes follow (waiting on whom, or on the applicant)."""
        if progress.status not in ("open", "info_requested") or self._status not in (
            LoanStatus.pending_approval,
            LoanStatus.info_requested,
        ):
            return
        status = LoanStatus.info_requested if progress.status == "info_requested" else LoanStatus.pending_approval
        if status != self._status:
            await workflow.execute_activity_method(
                LoanActivities.set_status, LoanStatusUpdate(loan_id=self._req.loan_id, status=status), **STEP
            )
        if self._status in (LoanStatus.pending_approval, LoanStatus.info_requested):  # not moved on meanwhile
            self._set_status(status, level=progress.level, role=progress.waiting_on_role)

    @workflow.signal
    def payment_progress(self, progress: PaymentProgress) -> None:
        """A child ACH payment (the disbursement, an installment's auto-debit) settled, completed or ended."""
        self._payments.append(progress)

    @workflow.update
    async def withdraw(self) -> str:
        """Answers the status the loan leaves the withdrawable ones for: `withdrawn`, or what came first (declined
        at the credit check, approved in the same instant); whatever run() does next, this ends."""
        self._withdraw_requested = True
        if self._approval_started:  # otherwise run() tells the child as soon as it has started it
            assert self._approval_id is not None  # set before the child is started
            try:
                await workflow.get_external_workflow_handle(self._approval_id).signal(ApprovalWorkflow.withdraw)
            except FailureError:  # the approval has just ended: run() takes its outcome
                pass
        await workflow.wait_condition(lambda: self._status not in WITHDRAWABLE)
        return self._status

    @withdraw.validator
    def _validate_withdraw(self) -> None:
        if self._status not in WITHDRAWABLE or self._withdraw_requested:
            raise ApplicationError(
                f"the loan is {self._status}: it can only be withdrawn before approval",
                type="not_withdrawable",
                non_retryable=True,
            )

    @workflow.update
    async def repay(self, req: RepaymentInput) -> RepaymentResult:
        if self._status != LoanStatus.active:  # accepted while becoming active (the validator): once it is
            await workflow.wait_condition(lambda: self._becoming != LoanStatus.active)
            if not self._active():
                raise ApplicationError(f"the loan is {self._status}", type="loan_not_active", non_retryable=True)
        result = await workflow.execute_activity_method(
            LoanServicingActivities.apply_repayment,
            req,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
            ),
        )
        self._repayments += 1
        self._recheck = True  # arrears may have cleared
        if result.status == LoanStatus.closed:
            self._set_status(LoanStatus.closed)
        return result

    @repay.validator
    def _validate_repayment(self, req: RepaymentInput) -> None:
        # The row says active as soon as _change has written it, before this workflow has seen that activity end:
        # a repayment asked for in between (the loan shown active) is accepted, and waits for it.
        if LoanStatus.active not in (self._status, self._becoming):
            raise ApplicationError(f"the loan is {self._status}", type="loan_not_active", non_retryable=True)
        if req.amount <= 0 or req.mode not in REPAYMENT_MODES:
            raise ApplicationError(
                "a repayment is a positive amount, as installment, prepayment or payoff",
                type="invalid_repayment",
                non_retryable=True,
            )

    def _active(self) -> bool:
        return self._status == LoanStatus.active

    @workflow.query
    def status(self) -> str:
        return self._status

    @workflow.run
    async def run(self, req: LoanInput) -> str:
        self._req = req
        if req.servicing:
            self._set_status(LoanStatus.active)
            return await self._service()
        await self._change(LoanStatus.checking_eligibility)
        try:
            eligibility = await workflow.execute_activity_method(LoanActivities.check_eligibility, req, **STEP)
        except ActivityError as error:
            if (invalid := refusal(error, "InvalidLoanTerms")) is None:
                raise
            return await self._change(LoanStatus.failed, reason=invalid.message)
        if self._withdraw_requested:
            return await self._change(LoanStatus.withdrawn)
        if not eligibility.eligible:
            return await self._change(LoanStatus.declined, reason=eligibility.reason)

        await self._change(LoanStatus.credit_check)
        summary = await workflow.execute_activity_method(LoanActivities.summary, req.loan_id, **STEP)
        try:
            report = await self._credit_report(summary)
        except ActivityError as error:
            if (declined := refusal(error, "NoCreditFile", "CreditCheckRejected")) is None:
                raise
            return await self._change(LoanStatus.declined, reason=f"credit check: {declined.message}")
        if self._withdraw_requested:
            return await self._change(LoanStatus.withdrawn)
        assert report is not None  # None only when the applicant withdrew
        if report.score < req.min_credit_score:
            return await self._change(
                LoanStatus.declined,
                credit_score=report.score,
                reason=f"credit score {report.score} is below {req.min_credit_score}",
            )

        try:
            await workflow.execute_activity_method(LoanActivities.store_schedule, req.loan_id, **STEP)
        except ActivityError as error:
            if (invalid := refusal(error, "InvalidLoanTerms")) is None:
                raise
            return await self._change(LoanStatus.failed, reason=invalid.message)
        try:
            approval = await workflow.execute_activity_method(
                LoanActivities.create_approval_request, req.loan_id, **STEP
            )
        except ActivityError as error:  # no rule routes it any more: the loan ends, saying why
            if (unrouted := refusal(error, "NoApprovalRule")) is None:
                raise
            return await self._change(LoanStatus.failed, reason=unrouted.message)
        await self._change(LoanStatus.pending_approval, credit_score=report.score)
        self._approval_id = f"approval-{approval.request_id}"
        handle = await workflow.start_child_workflow(
            ApprovalWorkflow.run,
            approval,
            id=self._approval_id,
            static_summary=f"Approval of {approval.title}",
            task_queue=approval.task_queue or workflow.info().task_queue,
        )
        self._approval_started = True
        if self._withdraw_requested:  # asked while the child was starting
            await handle.signal(ApprovalWorkflow.withdraw)
        outcome: ApprovalState = await handle
        if outcome.status != "approved":
            return await self._change(
                DECLINED_BY_APPROVAL[outcome.status], reason=f"approval {outcome.status} at level {outcome.level}"
            )

        await self._change(LoanStatus.approved)
        await workflow.execute_activity_method(LoanActivities.render_agreement, req.loan_id, **STEP)
        await self._change(LoanStatus.disbursing)
        await workflow.execute_activity_method(LoanActivities.disburse, req.loan_id, **STEP)
        payout = await workflow.execute_activity_method(LoanServicingActivities.plan_disbursement, req.loan_id, **STEP)
        if payout is not None:  # paid out to the member's bank: active once the credit settles or ends
            await start_ach_payment(payout)
            workflow.set_current_details(f"disbursing: ACH credit {payout.payment_id} to the member's bank")
            # A return the payment re-presents (represent=True) is not its end: wait for the next presentment's.
            await workflow.wait_condition(
                lambda: any(p.reference == "disbursement" and not p.represent for p in self._payments)
            )
            done = next(p for p in self._payments if p.reference == "disbursement" and not p.represent)
            self._payments = [p for p in self._payments if p.reference != "disbursement"]
            if done.status != "settled":  # returned or failed: the money stays on the deposit account
                workflow.logger.warning("disbursement credit %s: %s", done.status, done.return_code)
        await self._change(LoanStatus.active)
        self._req = self._req.model_copy(
            update={
                "epoch": ServicingClock.starting(
                    workflow.now(), self._req.day_seconds, self._req.business_timezone
                ).epoch
            }
        )
        return await self._service()

    async def _credit_report(self, summary: LoanSummary) -> CreditReport | None:
        """The bureau's report. A bureau refusing our own credentials (401/403) is our configuration, not the
        applicant: the loan waits in credit_check with the reason on its row, operators are told once, and the
        check is tried again with backoff until the bureau answers. None when the applicant withdraws meanwhile."""
        check = CreditCheckInput(
            loan_id=self._req.loan_id,
            applicant_id=summary.applicant_id,
            full_name=summary.applicant_name,
            amount=summary.amount,
        )
        wait, told = CREDIT_RETRY_FIRST, False
        while True:
            try:
                return await workflow.execute_activity_method(CreditActivities.check_credit, check, **STEP)
            except ActivityError as error:
                if (denied := refusal(error, ACCESS_DENIED)) is None:
                    raise
            if not told:
                details = denied.details[0] if denied.details and isinstance(denied.details[0], dict) else {}
                notice = await workflow.execute_activity_method(
                    LoanActivities.credit_check_blocked,
                    CreditCheckBlocked(loan_id=self._req.loan_id, message=denied.message, status=details.get("status")),
                    **STEP,
                )
                if notice is not None:
                    await workflow.execute_activity_method(
                        NotificationActivities.notify_users, notice, start_to_close_timeout=timedelta(seconds=60)
                    )
                told = True
            workflow.set_current_details(f"credit check waiting: {denied.message}; trying again in {wait}")
            try:
                await workflow.wait_condition(lambda: self._withdraw_requested, timeout=wait)
                return None
            except TimeoutError:
                wait = min(wait * 2, CREDIT_RETRY_MAX)

    async def _service(self) -> str:
        """Active: wakes on each due date (auto-debit), when a grace period ends (late fee) or an aging bucket
        changes, and when a child payment or a repayment arrives; continues as new to keep the history bounded.
        Closed: listens until the late-return window of its last auto-debit ends, as a late return reopens it."""
        if self._req.epoch is None:  # a loan activated before the servicing clock existed
            self._req = self._req.model_copy(
                update={
                    "epoch": ServicingClock.starting(
                        workflow.now(), self._req.day_seconds, self._req.business_timezone
                    ).epoch
                }
            )
        assert self._req.epoch is not None
        clock = ServicingClock(self._req.epoch, self._req.day_seconds, self._req.business_timezone)
        next_due = self._req.next_due
        rounds = 0
        while True:
            if self._status == LoanStatus.closed:
                if await self._reopened_by_late_return():
                    continue
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._payments:
                    continue
                await self._check(clock, next_due)  # arrears cleared on the row
                return self._status
            if rounds >= self._req.rounds_per_run or self._repayments >= CONTINUE_AS_NEW_AFTER:
                while self._payments:  # nothing heard is dropped at the hand-over
                    await self._payment_done(self._payments.pop(0))
                await workflow.wait_condition(workflow.all_handlers_finished)
                # a repayment or a payment came meanwhile (mypy keeps the narrowing from above across the awaits)
                if self._status == LoanStatus.closed or self._payments:  # type: ignore[comparison-overlap]
                    continue
                workflow.continue_as_new(self._req.model_copy(update={"servicing": True, "next_due": next_due}))
            rounds += 1
            state = await self._check(clock, next_due)
            if state.status == LoanStatus.closed:
                self._set_status(LoanStatus.closed)
                continue
            for number in state.due_numbers:
                debit = await workflow.execute_activity_method(
                    LoanServicingActivities.plan_auto_debit,
                    AutoDebitInput(loan_id=self._req.loan_id, number=number),
                    **STEP,
                )
                if debit is not None:
                    await start_ach_payment(debit)
                next_due = number + 1
            wake = min((day for day in (state.next_due_date, state.next_check) if day is not None), default=None)
            timeout = None if wake is None else max(timedelta(0), clock.start_of(wake) - workflow.now())
            try:
                await workflow.wait_condition(
                    lambda: (
                        bool(self._payments)
                        or self._recheck
                        or self._status == LoanStatus.closed
                        or self._repayments >= CONTINUE_AS_NEW_AFTER
                    ),
                    timeout=timeout,
                )
            except TimeoutError:
                pass
            self._recheck = False
            while self._payments:
                await self._payment_done(self._payments.pop(0))

    async def _reopened_by_late_return(self) -> bool:
        """Closed, while an applied auto-debit can still be returned late: True once a return has undone a
        repayment and reopened the loan, False when the window has passed without one."""
        until = self._req.late_returns_until
        while self._status == LoanStatus.closed:
            if not self._payments:
                if until is None or until <= workflow.now():
                    return False
                workflow.set_current_details(
                    f"closed; a late return of an auto-debit can reopen it until {until:%Y-%m-%d %H:%M:%S} UTC"
                )
                try:
                    await workflow.wait_condition(lambda: bool(self._payments), timeout=until - workflow.now())
                except TimeoutError:
                    return False
            while self._payments:
                await self._payment_done(self._payments.pop(0))
        return True

    async def _check(self, clock: ServicingClock, next_due: int) -> ServicingState:
        today = clock.today(workflow.now())
        state = await workflow.execute_activity_method(
            LoanServicingActivities.check_servicing,
            ServicingCheck(loan_id=self._req.loan_id, as_of=today, next_due=next_due),
            **STEP,
        )
        arrears = f"{state.days_past_due} days past due ({state.aging_bucket})" if state.days_past_due else "current"
        if arrears != self._arrears:
            self._arrears = arrears
            workflow.upsert_search_attributes(
                [sa.AGING_BUCKET.value_set(state.aging_bucket) if state.aging_bucket else sa.AGING_BUCKET.value_unset()]
            )
        if state.status == LoanStatus.active:
            workflow.set_current_details(
                f"active on loan day {today}: {arrears}"
                + (f"; next installment due {state.next_due_date}" if state.next_due_date else "")
            )
        return state

    async def _payment_done(self, progress: PaymentProgress) -> None:
        """A completed auto-debit is applied as a repayment; one the bank returns after that (reversed) has its
        repayment undone, which reopens a closed loan. A returned or failed one leaves the installment unpaid
        (the ACH workflow re-presents R01/R09 itself and tells the org admins of returns)."""
        if not progress.reference.startswith("installment:"):
            return
        debit = AutoDebitApplied(
            payment_id=progress.payment_id, loan_id=self._req.loan_id, presentment=progress.presentment
        )
        if progress.status == "completed":
            try:
                await workflow.execute_activity_method(LoanServicingActivities.apply_auto_debit, debit, **STEP)
                self._repayments += 1
            except ActivityError as error:  # e.g. the member spent the money before the hold was released
                workflow.logger.warning("auto-debit %s not applied: %s", progress.payment_id, error.cause)
            if self._req.late_return_window_seconds > 0:
                until = workflow.now() + timedelta(seconds=self._req.late_return_window_seconds) + LATE_RETURN_SLACK
                self._req = self._req.model_copy(
                    update={"late_returns_until": max(until, self._req.late_returns_until or until)}
                )
        elif progress.status == "reversed":
            try:
                undone = await workflow.execute_activity_method(
                    LoanServicingActivities.reverse_auto_debit, debit, **STEP
                )
            except ActivityError as error:  # applied before allocations were stored: an operator's job
                workflow.logger.error(
                    "auto-debit %s returned late, repayment not reversed: %s", progress.payment_id, error.cause
                )
                return
            if undone.reversed:
                self._repayments += 1
                if undone.status == LoanStatus.active and self._status == LoanStatus.closed:
                    self._set_status(LoanStatus.active)  # reopened: servicing goes on

    async def _change(self, status: LoanStatus, reason: str | None = None, credit_score: int | None = None) -> str:
        self._becoming = status
        await workflow.execute_activity_method(
            LoanActivities.set_status,
            LoanStatusUpdate(loan_id=self._req.loan_id, status=status, reason=reason, credit_score=credit_score),
            **STEP,
        )
        self._set_status(status)
        self._becoming = None
        if status in (
            LoanStatus.withdrawn,
            LoanStatus.declined,
            LoanStatus.rejected,
            LoanStatus.on_hold,
            LoanStatus.failed,
        ):
            await workflow.wait_condition(workflow.all_handlers_finished)
        return status

    def _set_status(self, status: LoanStatus, level: int | None = None, role: str | None = None) -> None:
        self._status = status
        waiting = status in (LoanStatus.pending_approval, LoanStatus.info_requested)
        updates: list[SearchAttributeUpdate[Any]] = [sa.LOAN_STATUS.value_set(status)]
        if level is not None:
            updates.append(sa.APPROVAL_LEVEL.value_set(level))
        updates.append(sa.WAITING_ON_ROLE.value_set(role) if waiting and role else sa.WAITING_ON_ROLE.value_unset())
        workflow.upsert_search_attributes(updates)
        workflow.set_current_details(
            f"{status}"
            + (
                f": level {level}, waiting on {role.replace('_', ' ')} since {workflow.now():%Y-%m-%d %H:%M} UTC"
                if waiting and role
                else ""
            )
        )
