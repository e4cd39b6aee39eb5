"""A multi-level approval, reusable by any subject (a loan runs it as a child).

Each level waits for its quorum of approvals from its role, reminds at the reminder offset, escalates once at
the deadline to the escalation role (whose own single approval then suffices), and after the last deadline applies
the rule's outcome (decline or hold). A rejection ends it; a request for information pauses the level until the
applicant answers. Decisions are updates whose validator refuses, before anything enters history, the wrong
role or level, the applicant, the submitter, a second vote by the same person, and a closed request.

A level is decided in rounds: a new round starts at escalation and when the applicant answers a request for
information (everyone at the level decides again, the asker included). A decision belongs to the round in which
its validator accepted it and counts only if that round is still current once the decision is recorded; earlier
rounds' decisions stay in the audit trail (approval_decisions keeps each one with its round) without counting.
Every update handler ends whatever the workflow does next: it waits only on conditions that closing makes true."""

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.local_steps import local_since

with workflow.unsafe.imports_passed_through():
    from activities.approvals import ApprovalActivities
    from activities.notifications import NotificationActivities
    from core import search_attributes as sa
    from models.approvals import (
        ApprovalInput,
        ApprovalProgress,
        ApprovalState,
        DecisionInput,
        DecisionRecord,
        InformationInput,
        LevelUpdate,
    )
    from models.notifications import NotifyUsers

STEP: dict[str, Any] = dict(start_to_close_timeout=timedelta(seconds=30))
# Since this patch a decision is recorded by a local activity: it runs in the worker within the workflow task that
# accepted the update, so the decision is answered once that one task completes (the vote durably written, the
# workflow's state moved on), not after an activity task dispatched through the server and a second workflow task.
# What it sets going (the request row's next level, the emails, the loan) are commands of that task and carry on
# after the answer. update_request stays an activity: a local one holds the workflow task while it waits, and
# messages (an answer, a withdrawal) must still be taken while a slow transaction holds the request's row.
LOCAL_STEPS = "approval-local-steps"
OUTCOME_STATUS = {"decline": "declined", "hold": "on_hold"}


def refuse(code: str, message: str) -> ApplicationError:
    """A validator's refusal; the API turns the type into the status code."""
    return ApplicationError(message, type=code, non_retryable=True)


@workflow.defn
class ApprovalWorkflow:
    def __init__(self) -> None:
        self._status = "open"
        self._level = 0
        self._round = 0  # of the current level; see the module docstring
        self._role: str | None = None
        self._quorum = 1
        self._deadline: datetime | None = None
        self._escalated = False
        self._approvals: set[str] = set()
        self._voted: set[str] = set()  # everyone who decided in this round, whatever the decision
        self._rejected = False
        self._withdrawn = False
        self._information: InformationInput | None = None
        self._written: tuple[str, int, int] | None = None  # (status, level, round) last written to the request row

    # --- messages ------------------------------------------------------------------------------------------

    @workflow.update
    async def decide(self, decision: DecisionInput) -> ApprovalState:
        # The validator has just accepted it in this round (nothing ran in between): that round is the decision's.
        level, round_ = self._level, self._round
        self._voted.add(str(decision.approver_id))
        await local_since(
            LOCAL_STEPS,
            ApprovalActivities.record_decision,
            DecisionRecord(
                request_id=self._input.request_id,
                level=level,
                round=round_,
                role=self._role or decision.approver_role,
                approver_id=decision.approver_id,
                approver_email=decision.approver_email,
                decision=decision.decision,
                reason=decision.reason,
            ),
            **STEP,
        )
        if (self._status, self._level, self._round) != ("open", level, round_):
            # Escalated, reopened, passed, waiting for information or closed while it was being recorded.
            raise refuse(
                "decision_superseded",
                f"while your decision was being recorded the request moved on (now {self._status} at level "
                f"{self._level}, round {self._round}): it is in the audit trail but does not count",
            )
        if decision.decision == "approve":
            self._approvals.add(str(decision.approver_id))
        elif decision.decision == "reject":
            self._rejected = True
        else:
            self._status = "info_requested"
            self._information = None
        # Answer with the state this decision leads to: the next level or round, or the outcome.
        await workflow.wait_condition(
            lambda: (
                self._status != "open"
                or (self._level, self._round) != (level, round_)
                or (len(self._approvals) < self._quorum and not self._rejected)
            )
        )
        return self.state()

    @decide.validator
    def _validate_decision(self, decision: DecisionInput) -> None:
        if self._status != "open":
            raise refuse(
                "request_closed" if self._status not in ("info_requested",) else "awaiting_information",
                f"the request is {self._status}",
            )
        if decision.level != self._level:
            raise refuse("wrong_level", f"the request is at level {self._level}, not {decision.level}")
        if decision.approver_role != self._role:
            raise refuse("wrong_role", f"level {self._level} waits on {self._role}, not {decision.approver_role}")
        if self._input.applicant_id and decision.approver_id == self._input.applicant_id:
            raise refuse("own_request", "an applicant cannot decide on their own request")
        if decision.approver_id == self._input.submitted_by:
            raise refuse("maker_checker", "the submitter of a request cannot decide on it")
        if str(decision.approver_id) in self._voted:
            raise refuse("already_decided", "you have already decided at this level (in this round)")
        if decision.decision in ("reject", "request_info") and not decision.reason.strip():
            raise refuse("reason_required", f"a {decision.decision.replace('_', ' ')} needs a reason")

    @workflow.update
    async def provide_information(self, info: InformationInput) -> ApprovalState:
        """Answers with the level reopened (a new round, written to the request row, so the inbox shows it), or
        with the request's end if it closes first (a withdrawal that came with the answer)."""
        self._information = info
        asked_in = (self._level, self._round)
        await workflow.wait_condition(
            lambda: (
                self._status not in ("open", "info_requested")
                or (
                    (self._level, self._round) != asked_in
                    and self._written is not None
                    and self._written[1:] == (self._level, self._round)
                )
            )
        )
        return self.state()

    @provide_information.validator
    def _validate_information(self, info: InformationInput) -> None:
        if self._status != "info_requested":
            raise refuse("no_information_requested", "no information has been requested")
        if info.provided_by not in (self._input.applicant_id, self._input.submitted_by):
            raise refuse("not_the_applicant", "only the applicant or the submitter can answer")

    @workflow.signal
    def withdraw(self) -> None:
        self._withdrawn = True

    @workflow.query
    def state(self) -> ApprovalState:
        return ApprovalState(
            request_id=self._input.request_id,
            status=self._status,
            level=self._level,
            levels=len(self._input.levels),
            waiting_on_role=self._role,
            deadline_at=self._deadline,
            escalated=self._escalated,
            approvals=len(self._approvals),
            quorum=self._quorum,
            round=self._round,
        )

    # --- the levels ----------------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, req: ApprovalInput) -> ApprovalState:
        self._input = req
        for number, spec in enumerate(req.levels, start=1):
            self._level, self._role, self._quorum, self._escalated = number, spec.role, spec.quorum, False
            self._round = 0
            self._new_round()
            await self._open("opened", spec.deadline_seconds)
            reminded = False
            while True:
                reminder_at = (
                    self._level_deadline - timedelta(seconds=spec.deadline_seconds - spec.reminder_seconds)
                    if spec.reminder_seconds and not reminded and not self._escalated
                    else None
                )
                wake_at = min(t for t in (reminder_at, self._level_deadline) if t is not None)
                done = await self._wait_until(wake_at)
                if self._withdrawn:
                    return await self._close("withdrawn")
                if self._rejected:
                    return await self._close("rejected")
                if self._status == "info_requested":
                    await self._record("info_requested")
                    await workflow.wait_condition(lambda: self._information is not None or self._withdrawn)
                    if self._withdrawn:
                        return await self._close("withdrawn")
                    # The level reopens on the answer for everyone at it, the asker included; its deadline restarts.
                    self._status = "open"
                    self._new_round()
                    await self._open("opened", spec.deadline_seconds)
                    continue
                if len(self._approvals) >= self._quorum:
                    break
                if done:
                    continue
                if reminder_at is not None and workflow.now() >= reminder_at and workflow.now() < self._level_deadline:
                    reminded = True
                    await self._notify("reminder")
                    continue
                if spec.escalation_role and not self._escalated:
                    # The escalation role's own decision is needed: the votes so far stay on record, not in the count.
                    self._escalated, self._role, self._quorum = True, spec.escalation_role, 1
                    self._new_round()
                    await self._open("escalated", spec.deadline_seconds)
                    continue
                return await self._close(OUTCOME_STATUS[req.final_outcome])
        return await self._close("approved")

    @property
    def _level_deadline(self) -> datetime:
        """The deadline of the level being decided: _open sets it before anything waits on it."""
        assert self._deadline is not None
        return self._deadline

    def _new_round(self) -> None:
        self._round += 1
        self._approvals, self._voted = set(), set()

    async def _wait_until(self, moment: datetime) -> bool:
        """True when something happened before `moment`; False when the time came."""
        remaining = (moment - workflow.now()).total_seconds()
        if remaining <= 0:
            return False
        try:
            await workflow.wait_condition(
                lambda: (
                    self._withdrawn
                    or self._rejected
                    or self._status == "info_requested"
                    or len(self._approvals) >= self._quorum
                ),
                timeout=timedelta(seconds=remaining),
            )
            return True
        except TimeoutError:
            return False

    async def _open(self, why: str, deadline_seconds: float) -> None:
        self._deadline = workflow.now() + timedelta(seconds=deadline_seconds)
        await self._record("open", notify=why)

    async def _notify(self, why: str) -> None:
        await self._record(self._status, notify=why)

    async def _record(self, status: str, notify: str | None = None) -> None:
        level, round_ = self._level, self._round
        recipients = await workflow.execute_activity_method(
            ApprovalActivities.update_request,
            LevelUpdate(
                request_id=self._input.request_id,
                status=status,
                level=level,
                round=round_,
                waiting_on_role=self._role,
                deadline_at=self._deadline if status in ("open", "info_requested") else None,
                notify=notify,
            ),
            **STEP,
        )
        self._written = (status, level, round_)
        await self._publish(status)
        if recipients:
            await workflow.execute_activity_method(
                NotificationActivities.notify_users,
                NotifyUsers(
                    user_ids=recipients,
                    kind=f"approval_{notify}",
                    template="approval_requested",
                    context={
                        "request_title": (
                            "Reminder: " if notify == "reminder" else "Escalated: " if notify == "escalated" else ""
                        )
                        + self._input.title,
                        "level": self._level,
                        "role": (self._role or "").replace("_", " "),
                        "deadline": self._deadline.strftime("%Y-%m-%d %H:%M UTC") if self._deadline else "none",
                        "link": f"/api/v1/approvals/{self._input.request_id}",
                    },
                    entity_type="approval_request",
                    entity_id=str(self._input.request_id),
                    dedupe_key=f"approval:{self._input.request_id}:{self._level}:{self._role}:{notify}:"
                    f"{int(self._deadline.timestamp()) if self._deadline else 0}",
                ),
                start_to_close_timeout=timedelta(seconds=60),
            )

    async def _close(self, status: str) -> ApprovalState:
        self._status = status
        await self._record(status)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state()

    async def _publish(self, status: str) -> None:
        role = self._role if status in ("open", "info_requested") else None
        workflow.upsert_search_attributes(
            [
                sa.APPROVAL_LEVEL.value_set(self._level),
                sa.WAITING_ON_ROLE.value_set(role) if role else sa.WAITING_ON_ROLE.value_unset(),
            ]
        )
        workflow.set_current_details(
            f"{status}: level {self._level} of {len(self._input.levels)}"
            + (
                f", waiting on {role.replace('_', ' ')} since {workflow.now():%Y-%m-%d %H:%M} UTC, deadline "
                f"{self._deadline:%Y-%m-%d %H:%M:%S} UTC"
                if role and self._deadline
                else ""
            )
        )
        parent = self._input.parent_workflow_id or (p.workflow_id if (p := workflow.info().parent) else None)
        if parent:
            await workflow.get_external_workflow_handle(parent).signal(
                "approval_progress", ApprovalProgress(status=status, level=self._level, waiting_on_role=role)
            )
