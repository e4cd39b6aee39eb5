"""Closing a cutoff window into its NACHA files, set-based: one query reads the window's queued payments with their
external accounts (and its prenotes), pure code builds the files (finance/ach_file_plan.py: debit and credit batches
apart, split at the bank's per-file limits), and a handful of statements write every entry, every payment's
`submitted` (its row, history event and audit row) and the files, whatever the number of payments.

A payment whose external account can no longer take it (disabled, or its debits blocked, since it was queued: a
prenote came back, a return) is failed at the cutoff instead of being filed."""

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Row, text
from sqlmodel.ext.asyncio.session import AsyncSession

from core import ach_files, ledger
from core.config import Settings
from core.crypto import AccountNumberCipher, FileCipher
from finance import nacha
from finance.ach_file_plan import FileLimits, build_files
from models.ach import AchFile, AchWindow
from models.payments import DroppedEntry

DROPPED_CODE = "account_unusable_at_cutoff"

_QUEUED = text(
    """SELECT p.id, p.kind, p.amount, p.sec_code, p.presentments, p.workflow_id,
              x.routing_number, x.account_number_encrypted, x.holder_name, x.account_type,
              x.status AS account_status, x.debits_blocked,
              (SELECT n.status <> 'sent' OR n.clears_at > now() FROM ach_prenotes n
               WHERE n.external_account_id = x.id) AS prenote_pending
       FROM payments p JOIN external_accounts x ON x.id = p.external_account_id
       WHERE p.window_id = :w AND p.status = 'queued'
       ORDER BY p.created_at, p.id
       FOR UPDATE OF p"""
)
_PRENOTES = text(
    """SELECT n.id, x.routing_number, x.account_number_encrypted, x.holder_name, x.account_type, x.org_id,
              (SELECT count(*) FROM users u WHERE u.id = x.owner_id) AS consumer
       FROM ach_prenotes n JOIN external_accounts x ON x.id = n.external_account_id
       WHERE n.window_id = :w AND n.status = 'queued' AND x.status = 'verified'
       ORDER BY n.created_at, n.id
       FOR UPDATE OF n"""
)

_CODES = {
    # (credit, checking, prenote)
    (True, True, False): nacha.TransactionCode.CHECKING_CREDIT,
    (True, False, False): nacha.TransactionCode.SAVINGS_CREDIT,
    (False, True, False): nacha.TransactionCode.CHECKING_DEBIT,
    (False, False, False): nacha.TransactionCode.SAVINGS_DEBIT,
    (True, True, True): nacha.TransactionCode.CHECKING_PRENOTE_CREDIT,
    (True, False, True): nacha.TransactionCode.SAVINGS_PRENOTE_CREDIT,
    (False, True, True): nacha.TransactionCode.CHECKING_PRENOTE_DEBIT,
    (False, False, True): nacha.TransactionCode.SAVINGS_PRENOTE_DEBIT,
}


def transaction_code(*, credit: bool, account_type: str, prenote: bool = False) -> nacha.TransactionCode:
    return _CODES[(credit, account_type == "checking", prenote)]


def entry_id(row_id: uuid.UUID) -> str:
    """The entry's individual id: how a trace number maps back to its payment or prenote."""
    return row_id.hex[:15].upper()


def unusable(row: Row) -> str | None:
    """Why a queued payment's external account can no longer take it, if it cannot."""
    if row.account_status != "verified":
        return f"the external account is {row.account_status}"
    if row.kind == "ach_debit" and row.debits_blocked:
        return "debits from the external account are blocked"
    if row.kind == "ach_debit" and row.prenote_pending:
        return "the external account's prenote has not cleared"
    return None


@dataclass
class Closed:
    file_ids: list[uuid.UUID]
    dropped: list[DroppedEntry]


async def close_window(
    session: AsyncSession,
    *,
    settings: Settings,
    cipher: AccountNumberCipher,
    file_cipher: FileCipher,
    window: AchWindow,
    limits: FileLimits,
    actor: str,
    drop_unusable: bool = True,
) -> Closed:
    """Closes the locked, open `window`: its files written (none when nothing is queued), its payments submitted or,
    when their external account can no longer take them, failed."""
    window.status = "closed"
    session.add(window)
    rows = (await session.execute(_QUEUED, {"w": window.id})).all()
    dropped = [(r, why) for r in rows if drop_unusable and (why := unusable(r))]
    if dropped:
        await _fail(session, dropped, window.id, actor)
    payments = [r for r in rows if not (drop_unusable and unusable(r))]
    prenotes = (await session.execute(_PRENOTES, {"w": window.id})).all()
    dropped_entries = [
        DroppedEntry(workflow_id=r.workflow_id, presentment=r.presentments, reason=w) for r, w in dropped
    ]
    count = len(payments) + len(prenotes)
    if not count:
        return Closed([], dropped_entries)
    # Reserve a contiguous block of 7-digit trace sequences; wrap to 1 rather than inside the window.
    first_sequence = (
        await session.execute(
            text(
                "UPDATE ach_trace_counter SET next_sequence = CASE WHEN next_sequence + :n > 10000000 THEN 1 + :n "
                "ELSE next_sequence + :n END WHERE id = 1 RETURNING next_sequence - :n"
            ),
            {"n": count},
        )
    ).scalar_one()
    created = datetime.now(UTC)
    files = build_files(
        odfi_routing=settings.odfi_routing_number,
        odfi_name=settings.odfi_name,
        company_id=settings.originator_company_id,
        company_name=settings.originator_company_name,
        creation_date=created.date(),
        creation_time=created.time(),
        batches=_batches(window, payments, prenotes, cipher),
        limits=limits,
        first_trace_sequence=first_sequence,
    )
    file_ids = [uuid.uuid4() for _ in files]
    for sequence, (file_id, nacha_file) in enumerate(zip(file_ids, files, strict=True), start=1):
        session.add(
            AchFile(
                id=file_id,
                window_id=window.id,
                sequence=sequence,
                entry_count=sum(1 for _ in nacha_file.iter_entries()),
                **ach_files.seal(file_cipher, file_id, nacha.write(nacha_file)),
                total_debit=nacha_file.total_debit,
                total_credit=nacha_file.total_credit,
            )
        )
    await session.flush()
    window.file_id = file_ids[0]
    session.add(window)
    filed = {
        e.individual_id: (file_id, e)
        for file_id, nacha_file in zip(file_ids, files, strict=True)
        for _, e in nacha_file.iter_entries()
    }
    if payments:
        await _submit(session, payments, filed, actor)
    if prenotes:
        await _send_prenotes(session, prenotes, filed)
    return Closed(file_ids, dropped_entries)


def _batches(
    window: AchWindow, payments: Sequence[Row], prenotes: Sequence[Row], cipher: AccountNumberCipher
) -> list[nacha.BatchSpec]:
    """Debits and credits in batches apart (service class 225 and 220), by SEC code and description."""
    groups: dict[tuple[str, str, bool], list[nacha.EntrySpec]] = {}
    for p in payments:
        credit = p.kind == "ach_credit"
        sec = p.sec_code or "PPD"
        description = "RETRY PYMT" if p.presentments > 1 else "PAYMENT"
        groups.setdefault((sec, description, credit), []).append(
            nacha.EntrySpec(
                transaction_code=transaction_code(credit=credit, account_type=p.account_type),
                rdfi_routing=p.routing_number,
                account_number=cipher.decrypt(p.account_number_encrypted),
                amount=p.amount,
                individual_name=p.holder_name,
                individual_id=entry_id(p.id),
                discretionary_data="S" if sec == "WEB" and not credit else "",
            )
        )
    for n in prenotes:  # a prenote precedes debits: a zero-dollar debit entry
        groups.setdefault(("PPD" if n.consumer else "CCD", "PRENOTE", False), []).append(
            nacha.EntrySpec(
                transaction_code=transaction_code(credit=False, account_type=n.account_type, prenote=True),
                rdfi_routing=n.routing_number,
                account_number=cipher.decrypt(n.account_number_encrypted),
                amount=Decimal("0.00"),
                individual_name=n.holder_name,
                individual_id=entry_id(n.id),
            )
        )
    return [
        nacha.BatchSpec(
            sec_code=nacha.SecCode(sec),
            entry_description=description,
            effective_entry_date=window.effective_date,
            entries=entries,
        )
        for (sec, description, _credit), entries in sorted(groups.items())
    ]


def _arrays(rows: Sequence[tuple]) -> list[list]:
    return [list(column) for column in zip(*rows, strict=True)]


async def _submit(session: AsyncSession, payments: Sequence[Row], filed: dict, actor: str) -> None:
    values = []
    for p in payments:
        file_id, entry = filed[entry_id(p.id)]
        values.append((p.id, entry.trace_number, file_id, p.presentments, p.amount, int(entry.transaction_code)))
    ids, traces, file_ids, presentments, amounts, codes = _arrays(values)
    params = {"ids": ids, "traces": traces, "files": file_ids, "presentments": presentments}
    await session.execute(
        text(
            """INSERT INTO ach_entries (trace_number, payment_id, file_id, presentment, amount, transaction_code)
               SELECT * FROM unnest(CAST(:traces AS varchar[]), CAST(:ids AS uuid[]), CAST(:files AS uuid[]),
                                    CAST(:presentments AS int[]), CAST(:amounts AS numeric[]), CAST(:codes AS int[]))"""
        ),
        {**params, "amounts": amounts, "codes": codes},
    )
    await session.execute(
        text(
            """UPDATE payments p SET status = 'submitted', trace_number = v.trace, updated_at = now()
               FROM unnest(CAST(:ids AS uuid[]), CAST(:traces AS varchar[])) AS v(id, trace) WHERE p.id = v.id"""
        ),
        {"ids": ids, "traces": traces},
    )
    # Keyed by file too: a presentment whose file was rejected is submitted again in another file.
    await _history(
        session,
        actor,
        "submitted",
        ids,
        [f"submitted:{n}:{f}" for n, f in zip(presentments, file_ids, strict=True)],
        [{"trace_number": t} for t in traces],
        "queued",
    )


async def _fail(session: AsyncSession, dropped: list[tuple[Row, str]], window_id: str, actor: str) -> None:
    ids = [r.id for r, _ in dropped]
    reasons = [f"at the cutoff of window {window_id}: {why}"[:500] for _, why in dropped]
    await session.execute(
        text(
            """UPDATE payments p SET status = 'failed', failure_code = :code, failure_reason = v.reason,
                      updated_at = now()
               FROM unnest(CAST(:ids AS uuid[]), CAST(:reasons AS varchar[])) AS v(id, reason) WHERE p.id = v.id"""
        ),
        {"ids": ids, "reasons": reasons, "code": DROPPED_CODE},
    )
    for row, _ in dropped:  # only credits hold money: the rare payments failed here release it
        if row.kind == "ach_credit":
            hold = (
                await session.execute(
                    text("SELECT id FROM holds WHERE idempotency_key = :k"), {"k": f"payment:{row.id}:hold"}
                )
            ).scalar_one_or_none()
            if hold:
                await ledger.release_hold(session, hold)
    await _history(
        session,
        actor,
        "failed",
        ids,
        ["failed"] * len(ids),
        [{"failure_code": DROPPED_CODE, "failure_reason": r} for r in reasons],
        "queued",
    )


async def _history(
    session: AsyncSession,
    actor: str,
    status: str,
    ids: list[uuid.UUID],
    keys: list[str],
    details: list[dict],
    before: str,
) -> None:
    """Each payment's history event (once by its key) and audit row, as activities.payments.transition writes them."""
    encoded = [json.dumps(d) for d in details]
    params = {"ids": ids, "keys": keys, "details": encoded, "status": status}
    await session.execute(
        text(
            """INSERT INTO payment_events (payment_id, event_key, status, detail)
               SELECT v.id, v.key, :status, CAST(v.detail AS jsonb)
               FROM unnest(CAST(:ids AS uuid[]), CAST(:keys AS varchar[]), CAST(:details AS text[])) AS v(id, key, detail)
               ON CONFLICT ON CONSTRAINT payment_events_once DO NOTHING"""
        ),
        params,
    )
    await session.execute(
        text(
            """INSERT INTO audit_log (actor, action, entity_type, entity_id, before, after)
               SELECT :actor, 'payment.' || :status, 'payment', CAST(v.id AS varchar),
                      jsonb_build_object('status', CAST(:before AS varchar)),
                      jsonb_build_object('status', CAST(:status AS varchar)) || CAST(v.detail AS jsonb)
               FROM unnest(CAST(:ids AS uuid[]), CAST(:details AS text[])) AS v(id, detail)"""
        ),
        {"ids": ids, "details": encoded, "status": status, "before": before, "actor": actor},
    )


async def _send_prenotes(session: AsyncSession, prenotes: Sequence[Row], filed: dict) -> None:
    values = []
    for n in prenotes:
        file_id, entry = filed[entry_id(n.id)]
        values.append((n.id, entry.trace_number, file_id, int(entry.transaction_code)))
    ids, traces, file_ids, codes = _arrays(values)
    await session.execute(
        text(
            """UPDATE ach_prenotes n SET status = 'sent', trace_number = v.trace, file_id = v.file,
                      transaction_code = v.code
               FROM unnest(CAST(:ids AS uuid[]), CAST(:traces AS varchar[]), CAST(:files AS uuid[]),
                           CAST(:codes AS int[])) AS v(id, trace, file, code)
               WHERE n.id = v.id"""
        ),
        {"ids": ids, "traces": traces, "files": file_ids, "codes": codes},
    )
