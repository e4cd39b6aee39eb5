"""A GDPR export of a member (domain/exports.request_gdpr, domain/gdpr.py): everything held on them, as a zip made
in the background (`gdpr-export-<id>`), its requester told with a signed link (GET /transaction-exports/{id}/file)."""

import uuid

from fastapi import APIRouter, Response

from api.deps import CurrentUser, IdempotencyKey, SessionDep, SettingsDep, TemporalDep
from domain import exports
from domain.exports import ExportOut

router = APIRouter(prefix="/members", tags=["exports"])


@router.post(
    "/{member_id}/gdpr-export",
    response_model=ExportOut,
    status_code=202,
    responses={
        200: {"description": "the same Idempotency-Key again: the export already asked for"},
        403: {"description": "staff of the member's organization other than an org admin"},
        409: {"description": "the Idempotency-Key was used for another export"},
    },
    summary="Export everything held on a member (the member, or an org admin of theirs): a zip, by a signed link",
)
async def request_gdpr_export(
    member_id: uuid.UUID,
    key: IdempotencyKey,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    client: TemporalDep,
    settings: SettingsDep,
) -> ExportOut:
    out, created = await exports.request_gdpr(session, user, client, settings, member_id, key)
    response.status_code = 202 if created else 200
    return out
