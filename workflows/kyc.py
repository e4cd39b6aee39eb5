"""KYC review of a member (`kyc-<member id>`): the member's submission is screened at the identity service; a pass
verifies, a fail rejects, a refer goes to a human review, which is an ApprovalWorkflow child (a reviewer of the
member's organization, never the submitter; a deadline, a reminder, an escalation; its last deadline declines).
The reviewer approves (verified), rejects (with a reason) or asks for more documents: the review is then withdrawn
and the member submits again (the `submit` update), which starts a new round of screening and review.

A re-verification (started by the kyc-reverification schedule, KycReverificationWorkflow) waits for the member's
new submission; when the current verification's end comes first, the member's KYC expires meanwhile.
Every update handler ends whatever the workflow does next: it waits only on a condition that the end makes true."""

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.kyc import KycActivities
    from activities.notifications import NotificationActivities
    from core import search_attributes as sa
    from models.approvals import ApprovalProgress, ApprovalState
    from models.members import (
        KycInput,
        KycState,
        KycStatusUpdate,
        KycSubmissionInput,
        ReviewRequest,
        ScreeningRequest,
        SubmissionRecord,
    )
    from models.notifications import NotifyUsers
    from workflows.approval import ApprovalWorkflow

STEP: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30)),
)
# workflow.patched: a review's escalation is written to the member's row (users.kyc_waiting_on) as it happens.
ROW_FOLLOWS_ESCALATION = "kyc-row-follows-escalation"
AWAITING = ("awaiting_submission", "more_documents_requested", "expired")
# What the member's row says (users.kyc_status) at each step of the workflow.
MEMBER_STATUS = {
    "screening": "pending",
    "in_review": "pending",
    "more_documents_requested": "pending",
    "verified": "verified",
    "rejected": "rejected",
    "expired": "expired",
}
MESSAGES = {
    "verified": ("verified", "Your identity is verified."),
    "rejected": ("not verified", "We could not verify your identity."),
    "more_documents_requested": ("more documents needed", "Please submit your identity details and documents again."),
    "expired": ("expired", "Your identity verification has expired: please submit your details again."),
    "awaiting_submission": (
        "renewal due",
        "Your identity verification ends soon: please submit your details and documents again.",
    ),
}


@workflow.defn
class KycWorkflow:
    def __init__(self) -> None:
        self._status = "awaiting_submission"
        self._waiting_on: str | None = "member"
        self._round = 0
        self._pending: KycSubmissionInput | None = None
        self._reason: str | None = None
        self._request_id: Any = None
        self._review_status: str | None = None
        self._review_waiting_on: str | None = None  # whom the review waits on, by its own progress signals
        self._row_waiting_on: str | None = None  # what the member's row says it waits on (the last _move)
        self._finished = False

    # --- messages ------------------------------------------------------------------------------------------

    @workflow.update
    async def submit(self, submission: KycSubmissionInput) -> KycState:
        """Answers once the workflow has taken the submission (the state then shows its round)."""
        self._pending = submission
        await workflow.wait_condition(lambda: self._pending is None or self._finished)
        return self.state()

    @submit.validator
    def _validate_submit(self, submission: KycSubmissionInput) -> None:
        if self._status not in AWAITING or self._pending is not None:
            raise ApplicationError(
                f"the KYC review is {self._status}: nothing is asked of the member now",
                type="not_awaiting_submission",
                non_retryable=True,
            )

    @workflow.signal
    async def approval_progress(self, progress: ApprovalProgress) -> None:
        """The review moved (the child tells its parent): who it waits on now, or that it asks for documents."""
        self._review_status = progress.status
        if progress.status == "open" and progress.waiting_on_role:
            self._review_waiting_on = progress.waiting_on_role
            if self._status == "in_review":
                self._waiting_on = progress.waiting_on_role
                self._publish()

    @workflow.query
    def state(self) -> KycState:
        return KycState(
            member_id=self._input.member_id,
            status=self._status,
            waiting_on=self._waiting_on,
            round=self._round,
            reason=self._reason,
            approval_request_id=self._request_id,
            expires_at=self._input.expires_at,
        )

    # --- the review ----------------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: KycInput) -> KycState:
        self._input = inp
        if inp.submission is not None:
            self._pending = inp.submission
        else:  # a re-verification: the member is asked, and their KYC expires if they answer too late
            await self._move("awaiting_submission", "member", member_status="verified")
            remaining = (inp.expires_at - workflow.now()).total_seconds() if inp.expires_at else 0
            try:
                await workflow.wait_condition(
                    lambda: self._pending is not None, timeout=timedelta(seconds=max(remaining, 0.001))
                )
            except TimeoutError:
                await self._move("expired", "member")
        while True:
            await workflow.wait_condition(lambda: self._pending is not None)
            outcome = await self._review_round()
            if outcome is None:  # more documents asked for: wait for them
                continue
            status, reason = outcome
            await self._move(status, None, reason=reason)
            self._finished = True
            await workflow.wait_condition(workflow.all_handlers_finished)
            return self.state()

    async def _review_round(self) -> tuple[str, str | None] | None:
        """One submission through screening and, on a refer, the human review: the outcome, or None when the
        reviewer asks for more documents."""
        submission, self._round, self._reason = self._pending, self._round + 1, None
        assert submission is not None
        info = workflow.info()
        recorded = await workflow.execute_activity_method(
            KycActivities.record_kyc_submission,
            SubmissionRecord(
                member_id=self._input.member_id,
                workflow_id=info.workflow_id,
                run_id=info.run_id,
                round=self._round,
                submission=submission,
            ),
            **STEP,
        )
        await self._move("screening", None)
        self._pending = None  # taken: the submit update answers with the screening under way
        screening = await workflow.execute_activity_method(
            KycActivities.screen_identity,
            ScreeningRequest(submission_id=recorded.submission_id, identity=submission.identity),
            **STEP,
        )
        if screening.result == "pass":
            return "verified", None
        if screening.result == "fail":
            return "rejected", "screening: " + (", ".join(screening.reasons) or "failed")
        approval = await workflow.execute_activity_method(
            KycActivities.create_kyc_review,
            ReviewRequest(
                member_id=self._input.member_id,
                org_id=self._input.org_id,
                submitted_by=submission.submitted_by,
                round=self._round,
                run_id=info.run_id,
                review=self._input.review,
                reasons=screening.reasons,
            ),
            **STEP,
        )
        self._request_id, self._review_status = approval.request_id, None
        handle = await workflow.start_child_workflow(
            ApprovalWorkflow.run,
            approval,
            id=f"approval-{approval.request_id}",
            static_summary=approval.title,
            task_queue=approval.task_queue or info.task_queue,
        )
        self._review_waiting_on = self._input.review.reviewer_role
        await self._move("in_review", self._review_waiting_on)
        result = asyncio.create_task(self._outcome(handle))
        if workflow.patched(ROW_FOLLOWS_ESCALATION):
            # An escalation moves the review to another role: the member's row says so too (the member list
            # filters by it), not only the query and the search attributes.
            while True:
                await workflow.wait_condition(
                    lambda: (
                        result.done()
                        or self._review_status == "info_requested"
                        or self._review_waiting_on != self._row_waiting_on
                    )
                )
                if result.done() or self._review_status == "info_requested":
                    break
                await self._move("in_review", self._review_waiting_on)
        else:
            await workflow.wait_condition(lambda: result.done() or self._review_status == "info_requested")
        if not result.done():  # documents asked for: this review ends, the member's next submission starts another
            try:
                await handle.signal(ApprovalWorkflow.withdraw)
            except FailureError:  # it has just ended: its outcome stands
                pass
        outcome: ApprovalState = await result
        reason = await workflow.execute_activity_method(KycActivities.kyc_review_reason, approval.request_id, **STEP)
        if outcome.status == "approved":
            return "verified", None
        if outcome.status == "withdrawn":
            await self._move("more_documents_requested", "member", reason=reason or "more documents requested")
            return None
        if outcome.status == "rejected":
            return "rejected", reason or "rejected by the review"
        return "rejected", f"the review's deadline passed without a decision ({outcome.status})"

    @staticmethod
    async def _outcome(handle: Any) -> ApprovalState:
        return await handle

    async def _move(
        self, status: str, waiting_on: str | None, reason: str | None = None, member_status: str | None = None
    ) -> None:
        """The workflow's step, written to the member's row (audited), then shown by the query and the search
        attributes (so whoever sees the step there finds the row written), and told to the member by email when it
        asks something of them or ends."""
        review = self._input.review
        await workflow.execute_activity_method(
            KycActivities.set_kyc_status,
            KycStatusUpdate(
                member_id=self._input.member_id,
                status=member_status or MEMBER_STATUS[status],
                waiting_on=waiting_on,
                reason=reason,
                valid_for_seconds=review.valid_for_seconds if status == "verified" else None,
            ),
            **STEP,
        )
        self._status, self._waiting_on, self._reason = status, waiting_on, reason
        self._row_waiting_on = waiting_on
        self._publish()
        if status in MESSAGES:
            headline, message = MESSAGES[status]
            await workflow.execute_activity_method(
                NotificationActivities.notify_users,
                NotifyUsers(
                    user_ids=[self._input.member_id],
                    kind=f"kyc_{status}",
                    template="kyc_update",
                    context={"headline": headline, "message": message, "reason": reason or ""},
                    entity_type="user",
                    entity_id=str(self._input.member_id),
                    dedupe_key=f"kyc:{workflow.info().run_id}:{self._round}:{status}",
                ),
                start_to_close_timeout=timedelta(seconds=60),
            )

    def _publish(self) -> None:
        workflow.upsert_search_attributes(
            [
                sa.KYC_STATUS.value_set(self._status),
                sa.KYC_WAITING_ON.value_set(self._waiting_on) if self._waiting_on else sa.KYC_WAITING_ON.value_unset(),
            ]
        )
        workflow.set_current_details(
            f"{self._status} (round {self._round})"
            + (f", waiting on {self._waiting_on.replace('_', ' ')}" if self._waiting_on else "")
            + (f": {self._reason}" if self._reason else "")
        )


@workflow.defn
class KycReverificationWorkflow:
    """The kyc-reverification schedule's run: a re-verification for every member whose KYC ends soon."""

    @workflow.run
    async def run(self, _: dict) -> int:
        started = await workflow.execute_activity_method(
            KycActivities.start_kyc_reverifications,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=2),
        )
        workflow.set_current_details(f"{started} re-verifications started")
        return started
