"""Reports generated in the background (`report-<id>` workflows) and scheduled report definitions (one Temporal
Schedule each): domain/report_runs.py. A run's file is downloaded here, signed in, by whoever may see the run."""

import logging
import uuid

from fastapi import APIRouter, Request, Response
from fastapi.responses import Response as RawResponse

from api.deps import CurrentUser, FileCipherDep, IdempotencyKey, SessionDep, SettingsDep, TemporalDep
from api.errors import AppError
from api.pagination import Page, PageDep
from core import audit
from domain import report_runs
from domain.report_runs import ReportDefinitionIn, ReportDefinitionOut, ReportRunIn, ReportRunOut
from models.report_runs import DefinitionStatus, RunStatus

log = logging.getLogger(__name__)

router = APIRouter(prefix="/report-runs", tags=["report runs"])
definitions = APIRouter(prefix="/report-definitions", tags=["report runs"])


@router.post(
    "",
    response_model=ReportRunOut,
    status_code=202,
    responses={
        200: {"description": "the same Idempotency-Key and body again: the run already asked for"},
        409: {"description": "the Idempotency-Key was used for another run"},
        422: {"description": "an unknown kind or format, or `date_from` after `date_to`"},
    },
    summary="Generate a report in the background; the requester is told (email, in-app) with a link when it is ready",
)
async def request_run(
    body: ReportRunIn,
    key: IdempotencyKey,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    client: TemporalDep,
    settings: SettingsDep,
) -> ReportRunOut:
    out, created = await report_runs.request_run(session, user, client, settings, body, key)
    response.status_code = 202 if created else 200
    return out


@router.get("", response_model=Page[ReportRunOut], summary="Report runs you can see, newest first")
async def list_runs(
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    page: PageDep,
    status: RunStatus | None = None,
    definition_id: uuid.UUID | None = None,
) -> Page[ReportRunOut]:
    return await report_runs.list_runs(session, user, settings, page, status, definition_id)


@router.get("/{run_id}", response_model=ReportRunOut, summary="A report run: queued, ready (with its file) or failed")
async def get_run(run_id: uuid.UUID, session: SessionDep, user: CurrentUser, settings: SettingsDep) -> ReportRunOut:
    return report_runs.run_out(await report_runs.visible_run(session, user, run_id), settings)


@router.get(
    "/{run_id}/file",
    response_class=RawResponse,
    responses={
        200: {"content": {"application/pdf": {}, "text/csv": {}, "application/json": {}}},
        409: {"description": "`not_ready` (still generating) or `report_failed`"},
        410: {"description": "the stored file is missing"},
    },
    summary="Download a ready report's file (every download is audited)",
)
async def download(
    run_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    cipher: FileCipherDep,
):
    run = await report_runs.visible_run(session, user, run_id)
    if run.status == RunStatus.failed:
        raise AppError(409, "report_failed", f"the report could not be generated: {run.failure}")
    if run.status != RunStatus.ready or run.storage_key is None or run.key_id is None:
        raise AppError(409, "not_ready", "the report is still being generated", {"status": run.status})
    try:
        sealed = await request.app.state.document_storage.get(run.storage_key)
    except KeyError:
        log.error("report file missing", extra={"report_run_id": str(run.id)})
        raise AppError(410, "content_missing", "the stored report file is missing; operators have been told") from None
    content = cipher.decrypt(run.key_id, sealed, f"report-run:{run.id}")
    await audit.record(
        session,
        actor=user.email,
        actor_id=user.id,
        action="report_run.downloaded",
        entity_type="report_run",
        entity_id=run.id,
        after={"sha256": run.sha256, "filename": run.filename},
    )
    await session.commit()
    return RawResponse(
        content,
        media_type=run.content_type,
        headers={"Content-Disposition": f'attachment; filename="{run.filename}"'},
    )


@definitions.post(
    "",
    response_model=ReportDefinitionOut,
    status_code=201,
    responses={
        200: {"description": "the same Idempotency-Key and body again: the definition already made"},
        409: {"description": "the Idempotency-Key was used for another definition"},
    },
    summary="Schedule a report (its own Temporal Schedule): each run reports on a period relative to its day",
)
async def create_definition(
    body: ReportDefinitionIn,
    key: IdempotencyKey,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    client: TemporalDep,
    settings: SettingsDep,
) -> ReportDefinitionOut:
    out, created = await report_runs.create_definition(session, user, client, settings, body, key)
    response.status_code = 201 if created else 200
    return out


@definitions.get("", response_model=Page[ReportDefinitionOut], summary="Scheduled reports you can see, newest first")
async def list_definitions(
    session: SessionDep, user: CurrentUser, client: TemporalDep, page: PageDep
) -> Page[ReportDefinitionOut]:
    return await report_runs.list_definitions(session, user, client, page)


@definitions.get("/{definition_id}", response_model=ReportDefinitionOut, summary="A scheduled report, its next runs")
async def get_definition(
    definition_id: uuid.UUID, session: SessionDep, user: CurrentUser, client: TemporalDep
) -> ReportDefinitionOut:
    definition = await report_runs.visible_definition(session, user, definition_id)
    return await report_runs.definition_view(client, definition)


@definitions.post("/{definition_id}/pause", response_model=ReportDefinitionOut, summary="Pause: no run until resumed")
async def pause_definition(
    definition_id: uuid.UUID, session: SessionDep, user: CurrentUser, client: TemporalDep
) -> ReportDefinitionOut:
    return await report_runs.change_state(session, user, client, definition_id, DefinitionStatus.paused)


@definitions.post("/{definition_id}/resume", response_model=ReportDefinitionOut, summary="Resume a paused definition")
async def resume_definition(
    definition_id: uuid.UUID, session: SessionDep, user: CurrentUser, client: TemporalDep
) -> ReportDefinitionOut:
    return await report_runs.change_state(session, user, client, definition_id, DefinitionStatus.active)


@definitions.delete(
    "/{definition_id}",
    response_model=ReportDefinitionOut,
    responses={409: {"description": "already deleted"}},
    summary="Delete a scheduled report (its schedule goes; its runs and files stay)",
)
async def delete_definition(
    definition_id: uuid.UUID, session: SessionDep, user: CurrentUser, client: TemporalDep
) -> ReportDefinitionOut:
    return await report_runs.change_state(session, user, client, definition_id, DefinitionStatus.deleted)
