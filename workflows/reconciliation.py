"""The reconciliation of one bank statement of one ledger account (PRODUCT.md §4.8; domain/reconciliation.py starts
it as `reconciliation-<account>-<statement>`, so a statement imported twice is one workflow).

It loads the statement's lines, runs the automatic matching passes (activities/reconciliation.py), then waits on the
operator: match a line to postings, split it across several, explain it (a bank fee, a timing difference...), unmatch
it, and close once no line is open. Those are updates whose validators refuse, before anything enters history, an
action before the passes are done, on a closed (or closing) reconciliation, on a line that does not exist or is not
in the state the action needs, and a close while lines are open. The activity checks the database again under lock
(another reconciliation may have matched a posting meanwhile): its refusal fails the update, nothing written.

Actions run one at a time (a lock): each one's validator passed against the state before the others ran, so the
handler checks again once it holds the lock. Every update handler ends whatever the workflow does next: the run
waits for them all before it returns or continues as new. A long history (thousands of actions) continues as new;
the new run rebuilds its state from the database (the passes run once: the database says they did)."""

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.reconciliation import ReconciliationActivities
    from models.reconciliation import (
        ActionInput,
        AutoMatchInput,
        CloseInput,
        CloseRequest,
        LineState,
        LineStatus,
        ReconciliationAction,
        ReconciliationInput,
        ReconciliationParams,
        ReconciliationProgress,
        ReconciliationStatus,
    )

STEP: dict[str, Any] = dict(start_to_close_timeout=timedelta(seconds=60))
MATCHING: dict[str, Any] = dict(start_to_close_timeout=timedelta(minutes=10))


def refuse(code: str, message: str, *details: Any) -> ApplicationError:
    """A validator's refusal; the API turns the type into the status code."""
    return ApplicationError(message, *details, type=code, non_retryable=True)


@workflow.defn
class ReconciliationWorkflow:
    def __init__(self) -> None:
        self._phase = "loading"  # loading, matching, open, closing, closed, continuing
        self._lines: dict[int, LineState] = {}
        self._by_trace = self._by_score = 0
        self._lock = asyncio.Lock()
        self._id: Any = None

    @workflow.run
    async def run(self, params: ReconciliationParams) -> ReconciliationProgress:
        self._id = params.reconciliation_id
        req = ReconciliationInput(reconciliation_id=params.reconciliation_id)
        workflow.set_current_details("loading the statement's lines")
        await workflow.execute_activity_method(ReconciliationActivities.load_statement_lines, req, **STEP)
        self._phase = "matching"
        workflow.set_current_details("matching lines to postings")
        await workflow.execute_activity_method(
            ReconciliationActivities.auto_match,
            AutoMatchInput(
                reconciliation_id=params.reconciliation_id,
                window_days=params.window_days,
                min_score=params.min_score,
            ),
            **MATCHING,
        )
        snapshot = await workflow.execute_activity_method(ReconciliationActivities.reconciliation_snapshot, req, **STEP)
        self._lines = {line.line_no: line for line in snapshot.lines}
        self._by_trace, self._by_score = snapshot.matched_by_trace, snapshot.matched_by_score
        self._phase = "closed" if snapshot.status == ReconciliationStatus.closed else "open"
        self._show()
        await workflow.wait_condition(
            lambda: (
                self._phase == "closed"
                or (
                    self._phase == "open" and not self._lock.locked() and workflow.info().is_continue_as_new_suggested()
                )
            )
        )
        if self._phase != "closed":
            self._phase = "continuing"  # validators refuse new actions (retry shortly) while the last ones finish
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(params)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.progress()

    # --- operator actions ----------------------------------------------------------------------------------

    @workflow.update
    async def act(self, action: ReconciliationAction) -> ReconciliationProgress:
        async with self._lock:
            self._check(action)  # again: an action taken while this one waited for the lock may have moved it
            state: LineState = await workflow.execute_activity_method(
                ReconciliationActivities.apply_reconciliation_action,
                ActionInput(reconciliation_id=self._id, action=action),
                **STEP,
            )
            self._lines[state.line_no] = state
            self._show()
        return self.progress()

    @act.validator
    def _validate_act(self, action: ReconciliationAction) -> None:
        self._check(action)

    @workflow.update
    async def close(self, req: CloseInput) -> ReconciliationProgress:
        async with self._lock:
            self._check_close()
            self._phase = "closing"
            try:
                await workflow.execute_activity_method(
                    ReconciliationActivities.close_reconciliation,
                    CloseRequest(reconciliation_id=self._id, actor_id=req.actor_id, actor_email=req.actor_email),
                    **STEP,
                )
            except Exception:
                self._phase = "open"
                raise
            self._phase = "closed"
            workflow.set_current_details(f"closed by {req.actor_email}")
        return self.progress()

    @close.validator
    def _validate_close(self, req: CloseInput) -> None:
        self._check_close()

    @workflow.query
    def progress(self) -> ReconciliationProgress:
        counts = dict.fromkeys(LineStatus, 0)
        for line in self._lines.values():
            counts[line.status] += 1
        return ReconciliationProgress(
            reconciliation_id=self._id,
            phase=self._phase,
            lines=len(self._lines),
            open=counts[LineStatus.open],
            matched=counts[LineStatus.matched],
            explained=counts[LineStatus.explained],
            matched_by_trace=self._by_trace,
            matched_by_score=self._by_score,
        )

    # --- checks --------------------------------------------------------------------------------------------

    def _check_phase(self) -> None:
        if self._phase in ("loading", "matching"):
            raise refuse("reconciliation_not_ready", "the statement is still being matched automatically")
        if self._phase in ("closing", "closed"):
            raise refuse("reconciliation_closed", f"the reconciliation is {self._phase}")
        if self._phase == "continuing":
            raise refuse("reconciliation_busy", "the reconciliation is moving to a new run: try again")

    def _check(self, action: ReconciliationAction) -> None:
        self._check_phase()
        line = self._lines.get(action.line_no)
        if line is None:
            raise refuse("unknown_line", f"the statement has no line {action.line_no}")
        if action.action == "unmatch":
            if line.status == LineStatus.open:
                raise refuse("line_not_resolved", f"line {action.line_no} is open: there is nothing to unmatch")
            return
        if line.status != LineStatus.open:
            raise refuse("line_not_open", f"line {action.line_no} is {line.status}: unmatch it first")
        if action.action == "explain" and action.reason_code is None:
            raise refuse("reason_required", "an explanation needs a reason code")
        if action.action == "match" and not action.entry_ids:
            raise refuse("entries_required", "a match names the journal entries of its postings")
        if action.action == "split" and len(set(action.entry_ids)) < 2:
            raise refuse("entries_required", "a split names at least two journal entries")

    def _check_close(self) -> None:
        self._check_phase()
        still_open = sum(1 for line in self._lines.values() if line.status == LineStatus.open)
        if still_open:
            raise refuse("lines_open", f"{still_open} lines are neither matched nor explained", still_open)

    def _show(self) -> None:
        p = self.progress()
        workflow.set_current_details(
            f"{p.phase}: {p.lines} lines, {p.matched} matched ({p.matched_by_trace} by trace number, "
            f"{p.matched_by_score} by score), {p.explained} explained, {p.open} open"
        )
