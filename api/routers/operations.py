"""The operator API: what failed or waits (failed and timed-out workflows, activities retrying, dead letters) and
the repairs (reset a workflow, send a rejected email again), every repair audited. The bank-wide roles see all; an
organization's admin or operator their organization's; nobody else any (core/access.py). Logic in
domain/operations.py and domain/dead_letters.py."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, EmailStr, Field

from api.deps import IdempotencyKey, SessionDep, SettingsDep, TemporalDep, allowed
from api.fields import Token
from api.pagination import Page, PageDep
from core.access import Action, Entity
from domain import dead_letters, operations
from domain.operations import ResetIn
from models.operations import (
    DeadLetters,
    EmailOut,
    FailedStatus,
    FailedSummary,
    ResetOut,
    RetryingPage,
    WorkflowPage,
    WorkflowType,
)
from models.users import User

router = APIRouter(prefix="/operations", tags=["operations"])

Watcher = Annotated[User, Depends(allowed(Entity.workflow, Action.read))]
Repairer = Annotated[User, Depends(allowed(Entity.workflow, Action.repair))]
MailWatcher = Annotated[User, Depends(allowed(Entity.email, Action.read))]
MailRepairer = Annotated[User, Depends(allowed(Entity.email, Action.repair))]
WorkflowId = Annotated[str, Path(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$", examples=["loan-0b7f…"])]


class ResendIn(BaseModel):
    to_address: EmailStr | None = Field(
        default=None,
        description="the corrected address; unset, the email goes to the address it had",
        examples=["jane.doe@example.com"],
    )


@router.get("/workflows/failed", response_model=WorkflowPage, summary="Failed and timed-out workflows, newest first")
async def list_failed_workflows(
    client: TemporalDep,
    settings: SettingsDep,
    user: Watcher,
    status: FailedStatus | None = None,
    workflow_type: Annotated[WorkflowType | None, Query(examples=["AchPaymentWorkflow"])] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="page size")] = 50,
    page_token: Annotated[Token | None, Query(description="the next_page_token of the previous page")] = None,
):
    return await operations.failed_workflows(client, settings, user, status, workflow_type, limit, page_token)


@router.get(
    "/workflows/failed/summary", response_model=FailedSummary, summary="How many workflows failed or timed out, by type"
)
async def failed_workflows_summary(client: TemporalDep, user: Watcher):
    return await operations.failed_summary(client, user)


@router.get(
    "/activities/retrying",
    response_model=RetryingPage,
    summary="Activities retrying at attempt min_attempts or more, in the newest running workflows",
)
async def list_retrying_activities(
    client: TemporalDep,
    settings: SettingsDep,
    user: Watcher,
    min_attempts: Annotated[
        int | None, Query(ge=2, le=1_000_000, description="default: the configured threshold")
    ] = None,
    scan: Annotated[int, Query(ge=1, le=500, description="running workflows to describe, newest first")] = 200,
):
    threshold = min_attempts or settings.operations_retry_threshold
    return await operations.retrying_activities(client, user, threshold, scan)


@router.post(
    "/workflows/{workflow_id}/reset",
    response_model=ResetOut,
    responses={
        404: {"description": "no such workflow, or not one the caller may see"},
        409: {"description": "the workflow completed or was canceled, or is running and not stuck"},
    },
    summary="Reset a failed, timed-out, terminated or stuck workflow to its first or last workflow task (audited)",
)
async def reset_workflow(
    workflow_id: WorkflowId,
    body: ResetIn,
    key: IdempotencyKey,
    client: TemporalDep,
    settings: SettingsDep,
    session: SessionDep,
    user: Repairer,
):
    return await operations.reset_workflow(
        client, session, user, workflow_id, body, key, settings.operations_retry_threshold
    )


@router.get("/dead-letters", response_model=DeadLetters, summary="What waits for an operator, by kind, with its list")
async def list_dead_letters(session: SessionDep, user: Watcher):
    return await dead_letters.dead_letters(session, user)


@router.get("/emails", response_model=Page[EmailOut], summary="The email outbox (status=rejected: refused for good)")
async def list_emails(
    session: SessionDep,
    user: MailWatcher,
    page: PageDep,
    status: Literal["pending", "sent", "rejected"] | None = None,
):
    return await dead_letters.list_emails(session, user, status, page)


@router.post(
    "/emails/{email_id}/resend",
    response_model=EmailOut,
    status_code=202,
    responses={409: {"description": "the email was sent already"}},
    summary="Send a rejected email again, to its corrected address (audited; sent once)",
)
async def resend_email(
    email_id: uuid.UUID,
    body: ResendIn,
    client: TemporalDep,
    settings: SettingsDep,
    session: SessionDep,
    user: MailRepairer,
):
    return await dead_letters.resend_email(session, client, settings, user, email_id, body.to_address)
