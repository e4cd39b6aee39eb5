"""The operator API over Temporal: failed and timed-out workflows (visibility), activities retrying past a threshold
(describe of running workflows, bounded), and the reset of a failed or stuck workflow, audited.

What a caller sees is narrowed by the access policy (core/access.py workflow_filter): the bank-wide roles every
workflow, an org admin or operator their organization's (the OrgId search attribute)."""

import asyncio
import base64
import binascii
import hashlib
import hmac
import uuid
from typing import Annotated

from pydantic import BaseModel, Field
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.api.common.v1 import WorkflowExecution as WorkflowExecutionRef
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.errors import AppError
from api.fields import line_rules
from core import access, audit
from core import search_attributes as sa
from core.access import Entity
from core.config import Settings
from core.task_queues import QUEUE_OF_WORKFLOW
from models.operations import (
    FailedCount,
    FailedStatus,
    FailedSummary,
    ResetOut,
    ResetTo,
    RetryingActivity,
    RetryingPage,
    WorkflowOut,
    WorkflowPage,
)
from models.users import User


class ResetIn(BaseModel):
    reason: Annotated[str, *line_rules(500, 3, strip=True)] = Field(
        examples=["The bureau's outage is over: run the credit check again"]
    )
    reset_to: ResetTo = Field(
        ResetTo.last_workflow_task,
        description="last_workflow_task: replay up to the last step and run it again (after a fix of what it "
        "called); first_workflow_task: run the whole workflow again (every write of ours is idempotent)",
    )


VISIBILITY_STATUS = {FailedStatus.failed: "Failed", FailedStatus.timed_out: "TimedOut"}
# A reset runs a closed workflow again: one that failed, timed out or was terminated. A running one only when stuck
# (an activity retrying past the threshold); a completed or canceled one never (its outcome was reached or decided).
RESETTABLE = {WorkflowExecutionStatus.FAILED, WorkflowExecutionStatus.TIMED_OUT, WorkflowExecutionStatus.TERMINATED}
DESCRIBE_CONCURRENCY = 16
_RESET_NS = uuid.UUID("0b7f4c1e-6a51-4d8e-9a57-2f4a8e3c9d10")


def _query(*clauses: str) -> str:
    return " AND ".join(f"({c})" for c in clauses if c)


def _failed_clause(status: FailedStatus | None) -> str:
    wanted = [status] if status else list(FailedStatus)
    return " OR ".join(f"ExecutionStatus = '{VISIBILITY_STATUS[s]}'" for s in wanted)


def _out(execution: WorkflowExecution) -> WorkflowOut:
    return WorkflowOut(
        workflow_id=execution.id,
        run_id=execution.run_id,
        workflow_type=execution.workflow_type,
        status=execution.status.name.lower() if execution.status else "unknown",
        task_queue=execution.task_queue,
        org_id=execution.typed_search_attributes.get(sa.ORG_ID),
        start_time=execution.start_time,
        close_time=execution.close_time,
    )


def _page_mac(settings: Settings, token: bytes) -> bytes:
    key = settings.jwt_secret.get_secret_value().encode()
    return hmac.new(key, b"operations-page-token\n" + token, hashlib.sha256).digest()[:16]


def page_token_out(settings: Settings, token: bytes | None) -> str | None:
    """Temporal's next-page token, signed: only a token this API gave reaches Temporal again (Temporal answers a
    forged one with an internal error, not a 4xx)."""
    if not token:
        return None
    return base64.urlsafe_b64encode(_page_mac(settings, token) + token).decode().rstrip("=")


def page_token_in(settings: Settings, page_token: str | None) -> bytes | None:
    if not page_token:
        return None
    try:
        raw = base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    mac, token = raw[:16], raw[16:]
    if not token or not hmac.compare_digest(mac, _page_mac(settings, token)):
        raise AppError(422, "invalid_page_token", "page_token is not one this API gave", {"page_token": page_token})
    return token


async def failed_workflows(
    client: Client,
    settings: Settings,
    user: User,
    status: FailedStatus | None,
    workflow_type: str | None,
    limit: int,
    page_token: str | None,
) -> WorkflowPage:
    """Failed and timed-out workflows, newest first, one page at a time (Temporal's page tokens)."""
    query = _query(
        _failed_clause(status),
        f"WorkflowType = '{workflow_type}'" if workflow_type else "",
        access.workflow_filter(user),
    )
    pages = client.list_workflows(query, page_size=limit, next_page_token=page_token_in(settings, page_token))
    await pages.fetch_next_page()
    return WorkflowPage(
        items=[_out(e) for e in pages.current_page or []],
        total=(await client.count_workflows(query)).count,
        next_page_token=page_token_out(settings, pages.next_page_token),
    )


async def failed_summary(client: Client, user: User) -> FailedSummary:
    """Counts by type and status. Temporal counts group by ExecutionStatus only, so one count per known type and
    status (bounded by our few types), and `other` for whatever type is not ours."""
    scope = access.workflow_filter(user)

    async def count(*clauses: str) -> int:
        return (await client.count_workflows(_query(*clauses, scope))).count

    pairs = [(t, s) for t in QUEUE_OF_WORKFLOW for s in FailedStatus]
    counts = await asyncio.gather(*(count(_failed_clause(s), f"WorkflowType = '{t}'") for t, s in pairs))
    totals = await asyncio.gather(*(count(_failed_clause(s)) for s in FailedStatus))
    by_type = [FailedCount(workflow_type=t, status=s, count=n) for (t, s), n in zip(pairs, counts, strict=True) if n]
    for s, total in zip(FailedStatus, totals, strict=True):
        other = total - sum(c.count for c in by_type if c.status == s)
        if other > 0:
            by_type.append(FailedCount(workflow_type="other", status=s, count=other))
    return FailedSummary(total=sum(totals), by_type=by_type)


def _retrying(description: WorkflowExecutionDescription, min_attempts: int) -> list[RetryingActivity]:
    found = []
    for pending in description.raw_description.pending_activities:
        if pending.attempt < min_attempts:
            continue
        found.append(
            RetryingActivity(
                workflow_id=description.id,
                run_id=description.run_id,
                workflow_type=description.workflow_type,
                activity_id=pending.activity_id,
                activity_type=pending.activity_type.name,
                attempt=pending.attempt,
                state=PendingActivityState.Name(pending.state).removeprefix("PENDING_ACTIVITY_STATE_").lower(),
                last_failure=(pending.last_failure.message or None) if pending.HasField("last_failure") else None,
                last_attempt_at=pending.last_started_time.ToDatetime()
                if pending.HasField("last_started_time")
                else None,
                next_attempt_at=pending.next_attempt_schedule_time.ToDatetime()
                if pending.HasField("next_attempt_schedule_time")
                else None,
            )
        )
    return found


async def retrying_activities(client: Client, user: User, min_attempts: int, scan: int) -> RetryingPage:
    """Pending activities at attempt `min_attempts` or more, in the `scan` newest running workflows the caller may
    see: Temporal does not index pending activities, so each workflow is described (bounded work)."""
    query = _query("ExecutionStatus = 'Running'", access.workflow_filter(user))
    running = [e async for e in client.list_workflows(query, limit=scan + 1, page_size=min(scan + 1, 1000))]
    truncated, running = len(running) > scan, running[:scan]
    slots = asyncio.Semaphore(DESCRIBE_CONCURRENCY)

    async def describe(execution: WorkflowExecution) -> list[RetryingActivity]:
        async with slots:
            try:
                description = await client.get_workflow_handle(execution.id, run_id=execution.run_id).describe()
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:  # gone since it was listed
                    return []
                raise
        return _retrying(description, min_attempts)

    found = [a for batch in await asyncio.gather(*(describe(e) for e in running)) for a in batch]
    found.sort(key=lambda a: (-a.attempt, a.workflow_id))
    return RetryingPage(items=found, scanned=len(running), truncated=truncated)


def is_stuck(description: WorkflowExecutionDescription, min_attempts: int) -> bool:
    return any(p.attempt >= min_attempts for p in description.raw_description.pending_activities)


async def reset_point(client: Client, workflow_id: str, run_id: str, reset_to: ResetTo) -> int | None:
    """The event id of the first or last completed workflow task of the run (what `temporal workflow reset --type
    FirstWorkflowTask|LastWorkflowTask` picks); None when no workflow task completed."""
    found = None
    async for event in client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            found = event.event_id
            if reset_to == ResetTo.first_workflow_task:
                break
    return found


async def describe_visible(client: Client, user: User, workflow_id: str) -> WorkflowExecutionDescription:
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise access.not_visible(user, Entity.workflow, workflow_id, exists=False) from None
        raise
    access.check_workflow_visible(user, workflow_id, description.typed_search_attributes.get(sa.ORG_ID))
    return description


async def reset_workflow(
    client: Client,
    session: AsyncSession,
    user: User,
    workflow_id: str,
    body: ResetIn,
    idempotency_key: str,
    stuck_after: int,
) -> ResetOut:
    """Resets the workflow's latest run to its first or last completed workflow task (Temporal's
    ResetWorkflowExecution: a new run replays the history up to there and goes on), and audits who did it and why.
    The Idempotency-Key is the reset's request id, so a retried request does not reset twice."""
    description = await describe_visible(client, user, workflow_id)
    status = description.status
    if status == WorkflowExecutionStatus.RUNNING and not is_stuck(description, stuck_after):
        raise AppError(
            409,
            "workflow_running",
            f"the workflow is running, with no activity at attempt {stuck_after} or more: reset only a failed, "
            "timed-out, terminated or stuck workflow",
            {"status": "running"},
        )
    if status != WorkflowExecutionStatus.RUNNING and status not in RESETTABLE:
        name = status.name.lower() if status else "unknown"
        raise AppError(409, "workflow_not_resettable", f"the workflow is {name}: its outcome stands", {"status": name})
    event_id = await reset_point(client, workflow_id, description.run_id, body.reset_to)
    if event_id is None:
        raise AppError(409, "no_reset_point", "no workflow task of this run completed: there is nothing to reset to")
    request_id = uuid.uuid5(_RESET_NS, f"{workflow_id}\n{description.run_id}\n{idempotency_key}")
    response = await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecutionRef(workflow_id=workflow_id, run_id=description.run_id),
            reason=f"{user.email}: {body.reason}",
            workflow_task_finish_event_id=event_id,
            request_id=str(request_id),
        )
    )
    out = ResetOut(
        workflow_id=workflow_id,
        previous_run_id=description.run_id,
        run_id=response.run_id,
        reset_to=body.reset_to,
        event_id=event_id,
    )
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="workflow.reset",
        entity_type="workflow",
        entity_id=workflow_id,
        before={"run_id": description.run_id, "status": status.name.lower() if status else None},
        after={"run_id": out.run_id, "reset_to": out.reset_to, "event_id": event_id, "reason": body.reason},
    )
    await session.commit()
    return out
