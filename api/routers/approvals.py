"""Approvers' inbox and decisions. A decision is a Temporal update: the workflow's validator answers at once
whether it is accepted; a refusal leaves nothing in the workflow's history and comes back as a clear 4xx."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import exists
from sqlmodel import col, select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from api.deps import CurrentUser, SessionDep, TemporalDep
from api.errors import AppError
from api.fields import multiline_rules
from core import access
from core.access import Entity
from models.approvals import ApprovalState, DecisionInput
from models.loans import ApprovalDecision, ApprovalRequest
from workflows.approval import ApprovalWorkflow

router = APIRouter(prefix="/approvals", tags=["approvals"])

# What a validator's refusal means for the caller.
REFUSALS = {
    "wrong_role": 403,
    "own_request": 403,
    "maker_checker": 403,
    "not_the_applicant": 403,
    "wrong_level": 409,
    "already_decided": 409,
    "request_closed": 409,
    "awaiting_information": 409,
    "decision_superseded": 409,
    "reason_required": 422,
}


class InboxItem(BaseModel):
    request_id: uuid.UUID
    subject_type: str
    subject_id: uuid.UUID
    title: str
    amount: Decimal
    level: int
    waiting_on_role: str
    waiting_since: datetime | None
    deadline_at: datetime | None


class DecisionIn(BaseModel):
    decision: Literal["approve", "reject", "request_info"]
    reason: Annotated[str, *multiline_rules(1000)] = Field(default="", examples=["Income verified against payslips"])
    level: int | None = Field(
        default=None, ge=1, le=100, description="the level you decide at; defaults to the current one"
    )


# Subjects whose approval has no way for the applicant to answer a request for information (a loan's answer is
# POST /loans/{id}/information, a KYC review's a new submission).
NO_INFORMATION_LOOP = frozenset(
    {
        "journal_reversal",
        # maker-checker requests (domain/maker_checker.py)
        "large_deposit",
        "large_withdrawal",
        "large_transfer",
        "manual_journal_entry",
        "period_close",
        "budget_change",
    }
)


@router.get("/inbox", response_model=list[InboxItem], summary="What waits for me, oldest first, with deadlines")
async def inbox(session: SessionDep, user: CurrentUser):
    # The requests the access policy lets this user see, open at a level waiting on their role, that they neither
    # applied for nor submitted, and on which they have not voted in the current round.
    voted = exists().where(
        col(ApprovalDecision.request_id) == ApprovalRequest.id,
        col(ApprovalDecision.approver_id) == user.id,
        col(ApprovalDecision.level) == ApprovalRequest.current_level,
        col(ApprovalDecision.round) == ApprovalRequest.current_round,
    )
    statement = access.scope(user, Entity.approval_request, select(ApprovalRequest)).where(
        col(ApprovalRequest.status) == "open",
        col(ApprovalRequest.waiting_on_role) == user.role,
        col(ApprovalRequest.applicant_id).is_distinct_from(user.id),
        col(ApprovalRequest.submitted_by) != user.id,
        ~voted,
    )
    rows = (await session.exec(statement.order_by(col(ApprovalRequest.level_opened_at), col(ApprovalRequest.id)))).all()
    return [
        InboxItem(
            request_id=r.id,
            subject_type=r.subject_type,
            subject_id=r.subject_id,
            title=r.title,
            amount=r.amount,
            level=r.current_level,
            waiting_on_role=r.waiting_on_role,
            waiting_since=r.level_opened_at,
            deadline_at=r.deadline_at,
        )
        for r in rows
    ]


@router.get("/{request_id}", response_model=ApprovalState, summary="Where an approval stands")
async def get_approval(request_id: uuid.UUID, session: SessionDep, user: CurrentUser, client: TemporalDep):
    request = await _visible_request(session, user, request_id)
    await session.commit()
    try:
        return await client.get_workflow_handle(request.workflow_id).query(ApprovalWorkflow.state)
    except RPCError:
        # Not started yet, or gone from Temporal's retention: the request row still tells where it stands.
        return ApprovalState(
            request_id=request.id,
            status=request.status,
            level=request.current_level,
            levels=len(request.levels),
            waiting_on_role=request.waiting_on_role,
            deadline_at=request.deadline_at,
            escalated=False,
            approvals=0,
            quorum=0,
            round=request.current_round,
        )


@router.post(
    "/{request_id}/decisions",
    response_model=ApprovalState,
    responses={
        403: {"description": "the wrong role, the applicant, or the submitter"},
        409: {
            "description": "the wrong level, a second vote in the round, a closed request, or `decision_superseded`: "
            "the level escalated, reopened or passed while the decision was being recorded (it stays "
            "in the audit trail but does not count)"
        },
        422: {
            "description": "a rejection or a request for information without a reason; a request for information "
            "on a subject nobody could answer it for (`no_information_loop`: a reversal)"
        },
    },
    summary="Approve, reject (with a reason) or request more information",
)
async def decide(request_id: uuid.UUID, body: DecisionIn, session: SessionDep, user: CurrentUser, client: TemporalDep):
    request = await _visible_request(session, user, request_id)
    await session.commit()
    if body.decision == "request_info" and request.subject_type in NO_INFORMATION_LOOP:
        # Nobody could answer it: the request would wait for an answer that has no endpoint.
        raise AppError(
            422,
            "no_information_loop",
            f"a {request.subject_type.replace('_', ' ')} request is approved or rejected (with a reason): "
            "ask its maker directly",
            {"subject_type": request.subject_type},
        )
    decision = DecisionInput(
        approver_id=user.id,
        approver_role=user.role,
        approver_email=user.email,
        level=body.level or request.current_level,
        decision=body.decision,
        reason=body.reason,
    )
    try:
        return await client.get_workflow_handle(request.workflow_id).execute_update(ApprovalWorkflow.decide, decision)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        code = getattr(cause, "type", None) or "rejected"
        raise AppError(
            REFUSALS.get(code, 409),
            code,
            str(getattr(cause, "message", cause)),
            {"level": request.current_level, "waiting_on_role": request.waiting_on_role},
        ) from exc
    except RPCError as exc:
        if request.status == "open":
            raise AppError(
                409, "approval_not_started", "the approval is starting; try again in a moment", str(exc)
            ) from exc
        raise AppError(409, "request_closed", "the approval is no longer running", str(exc)) from exc


async def _visible_request(session, user, request_id: uuid.UUID) -> ApprovalRequest:
    """Staff of the request's organization, or the member who applied or submitted it (core/access.py)."""
    request: ApprovalRequest = await access.visible(session, user, Entity.approval_request, request_id)
    return request
