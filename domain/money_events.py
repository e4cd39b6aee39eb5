"""Telling a member's money-events workflow that their money moved (workflows/money_events.py): signal-with-start
of `money-events-<user id>`, so one workflow per member evaluates their budgets and alerts, batching what arrives
while it works. Called after the money movement is committed; from an activity, let a failure raise (the activity is
retried and signals again: evaluation is idempotent); from the API, `money_changed_quietly`."""

import logging
import uuid
from typing import Any

from sqlalchemy import text
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy

from core.config import Settings, get_settings
from core.task_queues import queue_for
from models.money_events import MoneyEvent, MoneyEventsInput
from workflows.money_events import MoneyEventsWorkflow

log = logging.getLogger(__name__)


def workflow_id(user_id: uuid.UUID | str) -> str:
    return f"money-events-{user_id}"


async def money_changed(
    client: Client, user_id: uuid.UUID | str, cause: str, ref: str, settings: Settings | None = None
) -> None:
    """Signals (starting it when none runs) the member's money-events workflow. Pass `settings` where the task queue
    is not the environment's (tests)."""
    settings = settings or get_settings()
    await client.start_workflow(
        MoneyEventsWorkflow.run,
        MoneyEventsInput(user_id=uuid.UUID(str(user_id))),
        id=workflow_id(user_id),
        task_queue=queue_for(settings, MoneyEventsWorkflow),
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        start_signal="changed",
        start_signal_args=[MoneyEvent(cause=cause, ref=str(ref))],
        static_summary=f"Budgets and alerts of member {user_id}",
    )


async def money_changed_quietly(
    client: Client, session: Any, account_id: uuid.UUID, cause: str, ref: str, settings: Settings
) -> None:
    """The same from a request whose money is already committed: a Temporal outage must not turn it into an error
    (the alerts are evaluated on the member's next event)."""
    try:
        for owner_id in await member_owners(session, [account_id]):
            await money_changed(client, owner_id, cause, ref, settings)
    except Exception:
        log.warning("money_changed signal failed", extra={"account_id": str(account_id), "cause": cause}, exc_info=True)


# The owner of account `a` (a member) has something to evaluate: a live budget, an active alert subscription or an
# active rewards program they are enrolled in.
_OWNER_EVALUATES = """
    a.kind = 'internal' AND u.role = 'member'
    AND (EXISTS (SELECT 1 FROM member_budgets b WHERE b.user_id = a.owner_id AND b.ended_at IS NULL)
         OR EXISTS (SELECT 1 FROM alert_subscriptions s WHERE s.user_id = a.owner_id AND s.active)
         OR EXISTS (SELECT 1 FROM reward_accounts r JOIN reward_programs p ON p.id = r.program_id AND p.active
                     WHERE r.user_id = a.owner_id))"""


async def member_owners(session: Any, account_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """The members owning these internal accounts who have something to evaluate (GL accounts and the organization's
    own have no owner). The others' money moves without a workflow: nothing could be raised or earned for them."""
    return list(
        (
            await session.execute(
                text(
                    "SELECT DISTINCT a.owner_id FROM ledger_accounts a JOIN users u ON u.id = a.owner_id "
                    f"WHERE a.id = ANY(:ids) AND {_OWNER_EVALUATES}"
                ),
                {"ids": list(account_ids)},
            )
        ).scalars()
    )


async def members_paid_interest(
    session: Any, period: str, after: uuid.UUID | None, last: uuid.UUID | None
) -> list[uuid.UUID]:
    """member_owners of the accounts a month-end batch posted interest to (accounts after `after` up to `last`, by id,
    as the batch took them): read from the period's postings, so a retried batch finds the same members. The lower
    bound is a plain range, no `:after IS NULL OR`: run once a batch on pooled connections, this query is prepared
    and may run a generic plan, which must still read the batch's range alone (core/db.execute_planned_afresh)."""
    if last is None:
        return []
    return list(
        (
            await session.execute(
                text(
                    "SELECT DISTINCT a.owner_id FROM interest_postings ip "
                    "JOIN ledger_accounts a ON a.id = ip.account_id JOIN users u ON u.id = a.owner_id "
                    "WHERE ip.period = :period AND ip.account_id <= :last AND ip.account_id > :after "
                    f"AND {_OWNER_EVALUATES}"
                ),
                {"period": period, "after": after or uuid.UUID(int=0), "last": last},
            )
        ).scalars()
    )


async def money_changed_for_accounts(
    client: Client, db: Any, account_ids: list[uuid.UUID], cause: str, ref: str, settings: Settings
) -> None:
    """Signals the members owning these accounts; the database connection is given back before the signals."""
    async with db.session() as session:
        owners = await member_owners(session, account_ids)
    for owner_id in owners:
        await money_changed(client, owner_id, cause, ref, settings)


async def has_something_to_evaluate(session: Any, user_id: uuid.UUID) -> bool:
    """Whether a member's money moving could raise an alert or earn points (member_owners' rule, for one member)."""
    found = await session.execute(
        text(
            """SELECT EXISTS (SELECT 1 FROM member_budgets b WHERE b.user_id = :u AND b.ended_at IS NULL)
                   OR EXISTS (SELECT 1 FROM alert_subscriptions s WHERE s.user_id = :u AND s.active)
                   OR EXISTS (SELECT 1 FROM reward_accounts r JOIN reward_programs p ON p.id = r.program_id
                               WHERE r.user_id = :u AND p.active)"""
        ),
        {"u": user_id},
    )
    return bool(found.scalar())


async def money_changed_for_entry(client: Client, db: Any, entry_id: uuid.UUID, cause: str, settings: Settings) -> None:
    """Signals the members owning the accounts an entry posted to (a released maker-checker entry, a reversal, a
    loan's disbursement or repayment): called after its transaction committed; a retry signals again, harmlessly."""
    async with db.session() as session:
        accounts = list(
            (
                await session.execute(
                    text("SELECT DISTINCT account_id FROM postings WHERE entry_id = :entry"), {"entry": entry_id}
                )
            ).scalars()
        )
        owners = await member_owners(session, accounts)
    for owner_id in owners:
        await money_changed(client, owner_id, cause, str(entry_id), settings)
