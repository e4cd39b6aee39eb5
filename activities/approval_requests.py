"""The approval request row an ApprovalWorkflow decides (approval_requests), written once by whichever process asks
for the approval: a loan, a KYC review, a reversal, a maker-checker request. One INSERT for all of them, so the row's
shape (its status 'open' at level 1, its workflow id `approval-<request id>`) stays the same everywhere."""

import json
import uuid
from decimal import Decimal

from sqlalchemy import text

_INSERT = text(
    """INSERT INTO approval_requests (id, subject_type, subject_id, title, org_id, amount, applicant_id,
           submitted_by, rule_id, levels, final_outcome, status, current_level, workflow_id)
       VALUES (:id, :subject_type, :subject_id, :title, :org, :amount, :applicant, :submitter, :rule,
               CAST(:levels AS jsonb), :outcome, 'open', 1, :wf)
       ON CONFLICT (id) DO NOTHING"""
)


def approval_workflow_id(request_id: uuid.UUID) -> str:
    return f"approval-{request_id}"


async def insert_approval_request(
    session,
    *,
    request_id: uuid.UUID,
    subject_type: str,
    subject_id: uuid.UUID,
    title: str,
    org_id: uuid.UUID,
    amount: Decimal | int,
    submitted_by: uuid.UUID,
    levels: list[dict],
    final_outcome: str,
    applicant_id: uuid.UUID | None = None,
    rule_id: uuid.UUID | None = None,
) -> None:
    """Records the request, open at its first level; a retry (the same request id) writes nothing. `levels` are the
    levels' JSON forms (LevelSpec.model_dump(mode="json"))."""
    await session.execute(
        _INSERT,
        {
            "id": request_id,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "title": title,
            "org": org_id,
            "amount": amount,
            "applicant": applicant_id,
            "submitter": submitted_by,
            "rule": rule_id,
            "levels": json.dumps(levels),
            "outcome": final_outcome,
            "wf": approval_workflow_id(request_id),
        },
    )
