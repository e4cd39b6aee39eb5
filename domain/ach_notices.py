"""The bank's word on an external account rather than on a payment: a notification of change (NOC, a COR entry's
type 98 addenda) corrects the account's number, routing or type; a returned prenote disables the account (or blocks
its debits) as its R-code says. Each is recorded in the bank-event outbox as `applied` in the transaction that
applies it, once by the bank's event id; a NOC delivered again (or sent again under a new id) changes nothing more.

The account number is stored only encrypted; the audit row shows its last four digits, before and after."""

from datetime import UTC, datetime

from sqlalchemy import text
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from core import audit
from core.crypto import AccountNumberCipher
from finance.ach_corrections import CHANGE_REASONS, Correction
from finance.ach_returns import ReturnReaction, reaction
from finance.masking import mask_from_last4
from models.ach import AchPrenote
from models.external_accounts import ExternalAccount, ExternalAccountStatus

ACTOR = "system:bank-webhook"


async def event_status(session: AsyncSession, event_id: str) -> str:
    return (
        await session.execute(text("SELECT status FROM bank_events WHERE event_id = :id"), {"id": event_id})
    ).scalar_one()


async def prenote_of(session: AsyncSession, trace_number: str) -> AchPrenote | None:
    return (await session.exec(select(AchPrenote).where(AchPrenote.trace_number == trace_number))).first()


async def _record(session: AsyncSession, event_id: str, event_type: str, trace: str, body: str) -> bool:
    """The event's outbox row, applied; False when it was recorded before (a repeated delivery)."""
    row = (
        await session.execute(
            text(
                """INSERT INTO bank_events (event_id, type, trace_number, payload, status, detail, signaled_at)
                   VALUES (:id, :type, :trace, CAST(:payload AS jsonb), 'applied', 'applied to the external account',
                           now())
                   ON CONFLICT (event_id) DO NOTHING RETURNING id"""
            ),
            {"id": event_id, "type": event_type, "trace": trace, "payload": body},
        )
    ).first()
    return row is not None


async def _set_detail(session: AsyncSession, event_id: str, status: str, detail: str) -> None:
    await session.execute(
        text("UPDATE bank_events SET status = :s, detail = :d WHERE event_id = :id"),
        {"s": status, "d": detail[:500], "id": event_id},
    )


async def _external_of(session: AsyncSession, trace: str) -> ExternalAccount | None:
    """The external account the entry with this trace number went to (a payment's, or a prenote's), locked."""
    account_id = (
        await session.execute(
            text(
                """SELECT p.external_account_id FROM ach_entries e JOIN payments p ON p.id = e.payment_id
                   WHERE e.trace_number = :t
                   UNION ALL SELECT external_account_id FROM ach_prenotes WHERE trace_number = :t"""
            ),
            {"t": trace},
        )
    ).scalar()
    if account_id is None:
        return None
    return (await session.exec(select(ExternalAccount).where(ExternalAccount.id == account_id).with_for_update())).one()


def _view(account: ExternalAccount) -> dict:
    return {
        "routing_number": account.routing_number,
        "account_number": mask_from_last4(account.account_last4),
        "account_type": account.account_type,
    }


async def apply_correction(
    session: AsyncSession,
    cipher: AccountNumberCipher,
    *,
    event_id: str,
    trace: str,
    body: str,
    correction: Correction,
) -> str:
    """Applies a NOC once by its event id: 'accepted' (applied now, or nothing to change), 'duplicate', or
    'exception' (no entry of ours has that trace, or the corrected account is linked already in the organization)."""
    if not await _record(session, event_id, "entry.corrected", trace, body):
        return "duplicate"
    external = await _external_of(session, trace)
    reason = CHANGE_REASONS[correction.change_code]
    if external is None:
        await _set_detail(session, event_id, "exception", "no entry of ours has this trace number")
        return "exception"
    if not correction.corrects_account:
        await _set_detail(session, event_id, "exception", f"{correction.change_code} ({reason}): for an operator")
        return "exception"
    current = cipher.decrypt(external.account_number_encrypted)
    account_number = correction.account_number or current
    routing = correction.routing_number or external.routing_number
    account_type = correction.account_type or external.account_type
    if (account_number, routing, account_type) == (current, external.routing_number, external.account_type):
        await _set_detail(session, event_id, "applied", f"{correction.change_code}: the account already says so")
        return "accepted"
    fingerprint = cipher.fingerprint(routing, account_number)
    taken = (
        await session.execute(
            text("SELECT id FROM external_accounts WHERE org_id = :o AND fingerprint = ANY(:f) AND id <> :me"),
            {"o": external.org_id, "f": cipher.fingerprints(routing, account_number), "me": external.id},
        )
    ).scalar()
    if taken is not None:
        await _set_detail(
            session,
            event_id,
            "exception",
            f"{correction.change_code}: the corrected account is external account {taken}",
        )
        return "exception"
    before = _view(external)
    external.account_number_encrypted = cipher.encrypt(account_number)
    external.account_last4 = account_number[-4:]
    external.routing_number, external.account_type = routing, account_type
    external.fingerprint, external.updated_at = fingerprint, datetime.now(UTC)
    session.add(external)
    await audit.record(
        session,
        actor=ACTOR,
        actor_id=None,
        action="external_account.corrected",
        entity_type="external_account",
        entity_id=external.id,
        before=before,
        after={**_view(external), "change_code": correction.change_code, "reason": reason, "event_id": event_id},
    )
    await _set_detail(session, event_id, "applied", f"{correction.change_code} ({reason}) applied to {external.id}")
    return "accepted"


async def apply_prenote_event(
    session: AsyncSession, prenote: AchPrenote, *, event_id: str, event_type: str, body: str, return_code: str | None
) -> str:
    """A prenote's return disables its account (R02/R03/R04 and the like) or blocks its debits (any other code: the
    first debit never goes); anything else the bank says of a prenote needs nothing."""
    if not await _record(session, event_id, event_type, prenote.trace_number or "", body):
        return "duplicate"
    if event_type != "entry.returned":
        return "accepted"
    prenote = (await session.exec(select(AchPrenote).where(AchPrenote.id == prenote.id).with_for_update())).one()
    if prenote.status == "returned":
        return "accepted"
    external = (
        await session.exec(
            select(ExternalAccount).where(ExternalAccount.id == prenote.external_account_id).with_for_update()
        )
    ).one()
    before = {"status": external.status, "debits_blocked": external.debits_blocked}
    if reaction(return_code or "") == ReturnReaction.disable_account:
        external.status = ExternalAccountStatus.disabled
    else:
        external.debits_blocked = True
    external.updated_at = datetime.now(UTC)
    prenote.status, prenote.return_code = "returned", (return_code or "R??")[:3]
    session.add_all([external, prenote])
    await audit.record(
        session,
        actor=ACTOR,
        actor_id=None,
        action="external_account.prenote_returned",
        entity_type="external_account",
        entity_id=external.id,
        before=before,
        after={"status": external.status, "debits_blocked": external.debits_blocked, "return_code": return_code},
    )
    await _set_detail(
        session, event_id, "applied", f"prenote returned {return_code}: external account {external.status}"
    )
    return "accepted"
