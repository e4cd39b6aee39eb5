"""Arguments and answers of the approval workflow (reusable: loans now, budget changes later)."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field


class LevelSpec(BaseModel):
    role: str
    quorum: int = 1
    deadline_seconds: float
    reminder_seconds: float = 0  # 0: no reminder
    escalation_role: str | None = None


class ApprovalInput(BaseModel):
    request_id: uuid.UUID
    org_id: uuid.UUID
    title: str
    amount: Decimal
    applicant_id: uuid.UUID | None
    submitted_by: uuid.UUID
    levels: list[LevelSpec]
    final_outcome: Literal["decline", "hold"]
    parent_workflow_id: str | None = None  # told of each level, so the loan's search attributes follow
    # The queue its workflow runs on (core/task_queues.py: interactive); None in requests made before that queue
    # existed, whose approvals run on their parent's queue as they did (their histories replay unchanged).
    task_queue: str | None = None


class DecisionInput(BaseModel):
    approver_id: uuid.UUID
    approver_role: str
    approver_email: str
    level: int
    decision: Literal["approve", "reject", "request_info"]
    reason: str = Field(default="", max_length=1000)


class InformationInput(BaseModel):
    provided_by: uuid.UUID
    text: str = Field(min_length=1, max_length=4000)


class ApprovalState(BaseModel):
    request_id: uuid.UUID
    status: str
    level: int
    levels: int
    waiting_on_role: str | None
    deadline_at: datetime | None
    escalated: bool
    approvals: int
    quorum: int
    round: int = 1  # of the current level: a new one at escalation and when the applicant answers


class LevelUpdate(BaseModel):
    """What the activity writes to the request row (and tells the next approvers)."""

    request_id: uuid.UUID
    status: str
    level: int
    round: int = 1
    waiting_on_role: str | None
    deadline_at: datetime | None
    notify: Literal["opened", "reminder", "escalated"] | None = None


class DecisionRecord(BaseModel):
    request_id: uuid.UUID
    level: int
    round: int = 1  # the round in which the validator accepted it
    role: str
    approver_id: uuid.UUID
    approver_email: str
    decision: str
    reason: str


class ApprovalProgress(BaseModel):
    status: str
    level: int
    waiting_on_role: str | None
