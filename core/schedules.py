"""The back office's Temporal Schedules, created or brought up to the configured spec idempotently: at worker
start, and by hand with

    python -m core.schedules ensure | list | pause <id> | unpause <id> | trigger <id>

Each schedule starts its workflow by type name with `{"timezone": ...}` alone: the workflow works out its day or
month from the time the schedule meant it to start (workflows/schedule_time.py), so a backfill of a past period
(Temporal UI, or `temporal schedule backfill`) works on that period. An update keeps the schedule's state: a
schedule an operator paused stays paused across worker restarts.
"""

import asyncio
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import typer
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from core.config import Settings
from core.task_queues import queue_for


@dataclass(frozen=True)
class ScheduledJob:
    schedule_id: str
    workflow: str  # the workflow type name: the workflows are written apart, and registered on the worker
    cron: str
    description: str


def jobs(settings: Settings) -> list[ScheduledJob]:
    return [
        ScheduledJob(
            "bill-run",
            "BillRunWorkflow",
            settings.bill_run_cron,
            "Daily bill run: reminders before and on the due day, overdue marking, auto-pay debits",
        ),
        ScheduledJob(
            "daily-interest-accrual",
            "DailyAccrualWorkflow",
            settings.accrual_cron,
            "Daily interest accrual of every deposit account, for the day just ended",
        ),
        ScheduledJob(
            "month-end-interest-posting",
            "MonthEndPostingWorkflow",
            settings.interest_posting_cron,
            "Month-end interest posting (interest-posting-YYYY-MM), for the month just ended",
        ),
        ScheduledJob(
            "monthly-statements",
            "MonthlyStatementsWorkflow",
            settings.statements_cron,
            "Monthly statements of every account, for the month just ended",
        ),
        ScheduledJob(
            "database-backup",
            "BackupWorkflow",
            settings.backup_cron,
            "Daily backup of the application database: pg_dump, verified, pruned past the retention",
        ),
        ScheduledJob(
            "data-retention",
            "RetentionWorkflow",
            settings.retention_cron,
            "Daily retention: purge or anonymize what is past its retention (never the ledger), audited",
        ),
        ScheduledJob(
            "kyc-reverification",
            "KycReverificationWorkflow",
            settings.kyc_reverification_cron,
            "Daily KYC re-verification: members whose verification ends within KYC_REVERIFY_AHEAD are asked again",
        ),
        ScheduledJob(
            "fx-rates-refresh",
            "FxRatesRefreshWorkflow",
            settings.fx_refresh_cron,
            "Daily exchange rates of the pivot currency, fetched after the provider's update (README: Currency)",
        ),
    ]


def overlap_policy(name: str) -> ScheduleOverlapPolicy:
    try:
        return ScheduleOverlapPolicy[name.strip().upper()]
    except KeyError:
        known = ", ".join(p.name.lower() for p in ScheduleOverlapPolicy)
        raise ValueError(f"schedule_overlap {name!r} is not one of: {known}") from None


def build_schedule(settings: Settings, job: ScheduledJob, schedule_id: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            job.workflow,
            {"timezone": settings.business_timezone},
            id=schedule_id,
            task_queue=queue_for(settings, job.workflow),
            static_summary=job.description,
            memo={"schedule": schedule_id, "description": job.description},
        ),
        spec=ScheduleSpec(cron_expressions=[job.cron], time_zone_name=settings.business_timezone),
        policy=SchedulePolicy(
            overlap=overlap_policy(settings.schedule_overlap), catchup_window=settings.schedule_catchup_window
        ),
        state=ScheduleState(note=job.description),
    )


async def ensure_schedules(client: Client, settings: Settings, id_prefix: str = "") -> dict[str, str]:
    """Creates each schedule, or updates an existing one to the configured action, spec and policy.
    Returns {schedule id: "created" | "updated"}. `id_prefix` keeps test schedules apart."""
    outcome = {}
    for job in jobs(settings):
        schedule_id = f"{id_prefix}{job.schedule_id}"
        wanted = build_schedule(settings, job, schedule_id)
        try:
            await client.create_schedule(schedule_id, wanted, memo={"description": job.description})
            outcome[schedule_id] = "created"
        except ScheduleAlreadyRunningError:

            def keep_state(current: ScheduleUpdateInput, wanted=wanted) -> ScheduleUpdate:
                return ScheduleUpdate(
                    Schedule(
                        action=wanted.action,
                        spec=wanted.spec,
                        policy=wanted.policy,
                        state=current.description.schedule.state,
                    )
                )

            await client.get_schedule_handle(schedule_id).update(keep_state)
            outcome[schedule_id] = "updated"
    return outcome


# The command line (operators and `make run`).

cli = typer.Typer(help="The back office's Temporal Schedules.", no_args_is_help=True, add_completion=False)


async def set_schedule_state(client: Client, schedule_id: str, state: str, actor: str) -> None:
    """Pause, resume or delete the schedule of something a user paused, resumed or ended (`state`: paused, active or
    anything else for gone), noting who; a schedule already gone is left so."""
    handle = client.get_schedule_handle(schedule_id)
    try:
        if state == "paused":
            await handle.pause(note=f"paused by {actor}")
        elif state == "active":
            await handle.unpause(note=f"resumed by {actor}")
        else:
            await handle.delete()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise


async def _client(settings: Settings) -> Client:
    from core.temporal import connect

    return await connect(settings)


def _settings() -> Settings:
    from core.config import get_settings

    return get_settings()


@cli.command()
def ensure() -> None:
    """Create every schedule, or update it to the configured spec (a paused one stays paused)."""

    async def go():
        settings = _settings()
        for schedule_id, what in (await ensure_schedules(await _client(settings), settings)).items():
            typer.echo(f"{schedule_id}: {what}")

    _run(go)


def _run(go) -> None:
    """Runs a command's coroutine; an unknown schedule id is a message and exit code 1, not a traceback."""

    async def guarded():
        try:
            await go()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            typer.echo(
                f"not found: {exc.message} (ids: {', '.join(j.schedule_id for j in jobs(_settings()))})", err=True
            )
            return 1
        return 0

    if asyncio.run(guarded()):
        raise typer.Exit(1)


@cli.command("list")
def list_() -> None:
    """Each schedule: workflow, configured cron and time zone, state, next runs (local time)."""

    async def go():
        settings = _settings()
        client = await _client(settings)
        for job in jobs(settings):
            try:
                desc = await client.get_schedule_handle(job.schedule_id).describe()
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                typer.echo(f"{job.schedule_id:28} missing (run: python -m core.schedules ensure)")
                continue
            tz = desc.schedule.spec.time_zone_name or "UTC"
            upcoming = ", ".join(
                f"{t.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M}" for t in desc.info.next_action_times[:2]
            )
            typer.echo(
                f"{job.schedule_id:28} {job.workflow:26} cron {job.cron!r} {tz} "
                f"{'PAUSED' if desc.schedule.state.paused else 'active'}, next {upcoming or '-'}, "
                f"{desc.info.num_actions} runs so far"
            )

    _run(go)


def _on_handle(schedule_id: str, action: str) -> None:
    async def go():
        handle = (await _client(_settings())).get_schedule_handle(schedule_id)
        if action == "pause":
            await handle.pause(note="paused from the command line")
        elif action == "unpause":
            await handle.unpause(note="unpaused from the command line")
        else:
            await handle.trigger()
        typer.echo(f"{schedule_id}: {action}d" if action != "trigger" else f"{schedule_id}: triggered")

    _run(go)


@cli.command()
def pause(schedule_id: str) -> None:
    """Pause a schedule (it stays paused across ensure and worker restarts)."""
    _on_handle(schedule_id, "pause")


@cli.command()
def unpause(schedule_id: str) -> None:
    """Unpause a schedule."""
    _on_handle(schedule_id, "unpause")


@cli.command()
def trigger(schedule_id: str) -> None:
    """Run a schedule's action now (for the period as of now)."""
    _on_handle(schedule_id, "trigger")


if __name__ == "__main__":
    cli()
