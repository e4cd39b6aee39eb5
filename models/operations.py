"""The operator API's shapes: failed workflows, activities retrying, dead letters and repairs (domain/operations.py,
domain/dead_letters.py)."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

# A workflow type or id as it may enter a visibility query: letters, digits and the few separators our ids use.
WorkflowType = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")]


class FailedStatus(StrEnum):
    failed = "failed"
    timed_out = "timed_out"


class ResetTo(StrEnum):
    last_workflow_task = "last_workflow_task"  # replay the last step again: after a fix of what it called
    first_workflow_task = "first_workflow_task"  # run the whole workflow again (its writes are idempotent)


class WorkflowOut(BaseModel):
    workflow_id: str
    run_id: str
    workflow_type: str
    status: str
    task_queue: str
    org_id: str | None
    start_time: datetime | None
    close_time: datetime | None


class WorkflowPage(BaseModel):
    items: list[WorkflowOut]
    total: int = Field(description="every workflow the filter matches (Temporal's count, approximate)")
    next_page_token: str | None = Field(description="pass as page_token for the next page; null on the last")


class FailedCount(BaseModel):
    workflow_type: str = Field(description="a type of ours; `other` sums any other type")
    status: FailedStatus
    count: int


class FailedSummary(BaseModel):
    total: int
    by_type: list[FailedCount] = Field(description="the types with a non-zero count")


class RetryingActivity(BaseModel):
    workflow_id: str
    run_id: str
    workflow_type: str
    activity_id: str
    activity_type: str
    attempt: int
    state: str
    last_failure: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None


class RetryingPage(BaseModel):
    items: list[RetryingActivity]
    scanned: int = Field(description="running workflows described (at most `scan`, newest first)")
    truncated: bool = Field(description="more running workflows exist than were scanned")


class ResetOut(BaseModel):
    workflow_id: str
    previous_run_id: str
    run_id: str = Field(description="the new run, started from the reset point")
    reset_to: ResetTo
    event_id: int = Field(description="the workflow task completion the new run replays up to")


class EmailOut(BaseModel):
    id: uuid.UUID
    to_address: str
    subject: str
    status: str = Field(description="pending, sent or rejected (the mail server refused it for good)")
    error: str | None
    created_at: datetime
    sent_at: datetime | None


class DeadLetterCount(BaseModel):
    kind: str
    count: int
    list: str = Field(description="the endpoint that lists them, with its filter")


class DeadLetters(BaseModel):
    items: list[DeadLetterCount]
