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

import typer
from temporalio.client import (Client, Schedule, ScheduleActionStartWorkflow, ScheduleAlreadyRunningError,
                               ScheduleOverlapPolicy, SchedulePolicy, ScheduleSpec, ScheduleState, ScheduleUpdate,
                               ScheduleUpdateInput)
from temporalio.service import RPCError, RPCStatusCode

from core.config import Settings


@dataclass(frozen=True)
class ScheduledJob:
    schedule_id: str
    workflow: str  # the workflow type name: the workflows are written apart, and registered on the worker
    cron: str
    description: str


def jobs(settings: Settings) -> list[ScheduledJob]:
    return [
        ScheduledJob("bill-run", "BillRunWorkflow", settings.bill_run_cron,
                     "Daily bill run: reminders before and on the due day, overdue marking, auto-pay debits"),
        ScheduledJob("daily-interest-accrual", "DailyAccrualWorkflow", settings.accrual_cron,
                     "Daily interest accrual of every deposit account, for the day just ended"),
        ScheduledJob("month-end-interest-posting", "MonthEndPostingWorkflow", settings.interest_posting_cron,
                     "Month-end interest posting (interest-posting-YYYY-MM), for the month just ended"),
        ScheduledJob("monthly-statements", "MonthlyStatementsWorkflow", settings.statements_cron,
                     "Monthly statements of every account, for the month just ended"),
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
            job.workflow, {"timezone": settings.schedule_timezone}, id=schedule_id, task_queue=settings.task_queue,
            static_summary=job.description, memo={"schedule": schedule_id, "description": job.description}),
        spec=ScheduleSpec(cron_expressions=[job.cron], time_zone_name=settings.schedule_timezone),
        policy=SchedulePolicy(overlap=overlap_policy(settings.schedule_overlap),
                              catchup_window=settings.schedule_catchup_window),
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
                return ScheduleUpdate(Schedule(action=wanted.action, spec=wanted.spec, policy=wanted.policy,
                                               state=current.description.schedule.state))
            await client.get_schedule_handle(schedule_id).update(keep_state)
            outcome[schedule_id] = "updated"
    return outcome


# The command line (operators and `make run`).

cli = typer.Typer(help="The back office's Temporal Schedules.", no_args_is_help=True, add_completion=False)


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
    asyncio.run(go())


@cli.command("list")
def list_() -> None:
    """Each schedule: spec, time zone, state, next run."""
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
            spec, state = desc.schedule.spec, desc.schedule.state
            upcoming = desc.info.next_action_times[0].isoformat() if desc.info.next_action_times else "-"
            typer.echo(f"{job.schedule_id:28} {job.workflow:26} {' '.join(spec.cron_expressions) or spec.calendars} "
                       f"{spec.time_zone_name} {'PAUSED' if state.paused else 'active'} next={upcoming} "
                       f"runs={desc.info.num_actions}")
    asyncio.run(go())


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
    asyncio.run(go())


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
