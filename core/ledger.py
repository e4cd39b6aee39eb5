"""Ledger operations shared by the API and the activities: balances derived from postings, locking,
and idempotent journal entries; and the ledger's rules, which the database holds, as exceptions."""

import contextlib
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel.ext.asyncio.session import AsyncSession

from models.gateway import GL_GATEWAY_CLEARING, GL_GATEWAY_CLEARING_NAME
from models.ledger import GL_ACCOUNTS


class LedgerError(Exception):
    """A rule of the ledger the database refused to break (migrations 0001, 0012, 0025 and 0047): one class per rule, named by
    the constraint name its trigger raises with."""

    rule = ""


class UnbalancedEntry(LedgerError):
    """A statement left an entry's postings not summing to zero, or with fewer than two legs."""

    rule = "ledger_entries_balanced"


class MixedCurrencyEntry(LedgerError):
    """An entry with legs on accounts of two currencies: an entry is in one currency (a conversion is two entries)."""

    rule = "ledger_entry_one_currency"


class AccountCurrencyFixed(LedgerError):
    """An account's currency was to change: its postings are amounts in the currency it opened in."""

    rule = "ledger_account_currency_fixed"


class EntryWithoutPostings(LedgerError):
    """A journal entry came to commit without postings."""

    rule = "ledger_entry_has_postings"


class PostingsAreAppendOnly(LedgerError):
    """A posting was to be updated, deleted or truncated: corrections are new, reversing entries."""

    rule = "ledger_postings_append_only"


class PostingToClosedAccount(LedgerError):
    """A posting to a closed account. Only a return (`ach_return`) may: it unwinds money that moved while the
    account was open, and the bank has already taken it back."""

    rule = "ledger_account_open"


class PostingInClosedPeriod(LedgerError):
    """A posting whose entry is dated inside a closed accounting period (migration 0025): corrections are posted in
    an open period."""

    rule = "ledger_period_open"


_RULES = {cls.rule: cls for cls in LedgerError.__subclasses__()}


def ledger_error(error: BaseException) -> LedgerError | None:
    """The ledger rule a database error is, as its exception; None for any other error."""
    cause = getattr(error, "orig", error)
    diag: Any = getattr(cause, "diag", None)
    constraint: Any = getattr(diag, "constraint_name", None)
    rule = _RULES.get(constraint)
    return rule(diag.message_primary) if rule else None


@contextlib.contextmanager
def ledger_rules():
    """Raises a database error that is a ledger rule as that rule's exception."""
    try:
        yield
    except DBAPIError as error:
        if (broken := ledger_error(error)) is None:
            raise
        raise broken from error


@dataclass(frozen=True)
class Balance:
    account_id: uuid.UUID
    ledger: Decimal
    held: Decimal

    @property
    def available(self) -> Decimal:
        return self.ledger - self.held


async def balances(session: AsyncSession, account_ids: list[uuid.UUID]) -> dict[uuid.UUID, Balance]:
    if not account_ids:
        return {}
    rows = await session.execute(
        text("SELECT account_id, ledger_balance, held FROM account_balances WHERE account_id = ANY(:ids)"),
        {"ids": list(account_ids)},
    )
    cents = Decimal("0.01")
    return {
        r.account_id: Balance(r.account_id, Decimal(r.ledger_balance).quantize(cents), Decimal(r.held).quantize(cents))
        for r in rows
    }


async def lock_accounts(session: AsyncSession, account_ids: list[uuid.UUID], shared: bool = False) -> None:
    """Row locks in id order, so two transfers between the same accounts can't deadlock, and a balance
    check followed by a posting can't race another one. NO KEY UPDATE, so that rows merely referencing
    the account (a new payment, a hold) are not blocked by it. shared: a SHARE lock, for a check of the account's
    state that no balance depends on (an ACH debit's): it keeps the account from closing meanwhile, and any number
    of such checks run at once."""
    mode = "SHARE" if shared else "NO KEY UPDATE"
    await session.execute(
        text(f"SELECT id FROM ledger_accounts WHERE id = ANY(:ids) ORDER BY id FOR {mode}"),
        {"ids": sorted(set(account_ids))},
    )


async def gl_account(session: AsyncSession, code: str, currency: str = "USD") -> uuid.UUID:
    """The id of the bank's GL account `code` (models/ledger.py) in `currency`: the USD ones always exist, another
    currency's exist once an account was opened in it (ensure_gl_accounts)."""
    found = await session.execute(
        text("SELECT id FROM ledger_accounts WHERE kind = 'gl' AND code = :code AND currency = :currency"),
        {"code": code, "currency": currency},
    )
    return found.scalar_one()


async def ensure_gl_accounts(session: AsyncSession, currency: str) -> None:
    """The bank's GL accounts in `currency`, created if missing (idempotent; a concurrent opening creates them once:
    the unique (code, currency) settles it). Their ids are derived from code and currency, as migration 0001's."""
    accounts = [*GL_ACCOUNTS, (GL_GATEWAY_CLEARING, GL_GATEWAY_CLEARING_NAME, "asset", "debit")]
    suffix = "" if currency == "USD" else f":{currency}"
    await session.execute(
        text("""INSERT INTO ledger_accounts (id, code, name, kind, type, normal_balance, currency, status)
                SELECT gl.id, gl.code, gl.name, 'gl', gl.type, gl.normal, :currency, 'active'
                FROM unnest(CAST(:ids AS uuid[]), CAST(:codes AS text[]), CAST(:names AS text[]),
                            CAST(:types AS text[]), CAST(:normals AS text[])) AS gl(id, code, name, type, normal)
                ON CONFLICT (code, currency) DO NOTHING"""),
        {
            "currency": currency,
            "ids": [uuid.uuid5(uuid.NAMESPACE_URL, f"backoffice:gl:{code}{suffix}") for code, *_ in accounts],
            "codes": [code for code, *_ in accounts],
            "names": [name if currency == "USD" else f"{name} ({currency})" for _, name, *_ in accounts],
            "types": [gl_type for _, _, gl_type, _ in accounts],
            "normals": [normal for *_, normal in accounts],
        },
    )


@dataclass(frozen=True)
class Leg:
    account_id: uuid.UUID
    amount: Decimal  # debit positive, credit negative


async def entry_id_of(session: AsyncSession, idempotency_key: str) -> uuid.UUID | None:
    """The entry written under this key, if any."""
    found = await session.execute(
        text("SELECT id FROM journal_entries WHERE idempotency_key = :key"), {"key": idempotency_key}
    )
    return found.scalar_one_or_none()


async def post_entry(
    session: AsyncSession,
    *,
    idempotency_key: str,
    entry_type: str,
    description: str,
    effective_date: date,
    legs: list[Leg],
    payment_id: uuid.UUID | None = None,
) -> tuple[uuid.UUID, bool]:
    """Writes one balanced entry, or finds the one already written under this key. Returns (id, created).

    All postings go in one statement: the database checks each statement leaves its entries balanced, and refuses
    a posting to a closed account (PostingToClosedAccount)."""
    if sum((leg.amount for leg in legs), Decimal(0)) != 0:
        raise ValueError("journal entry legs must sum to zero")
    entry_id = uuid.uuid4()
    inserted = await session.execute(
        text("""INSERT INTO journal_entries (id, idempotency_key, entry_type, description, effective_date, payment_id)
                VALUES (:id, :key, :type, :description, :effective_date, :payment_id)
                ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"""),
        {
            "id": entry_id,
            "key": idempotency_key,
            "type": entry_type,
            "description": description,
            "effective_date": effective_date,
            "payment_id": payment_id,
        },
    )
    if inserted.first() is None:
        existing = await entry_id_of(session, idempotency_key)
        assert existing is not None  # the insert just conflicted on this key
        return existing, False
    with ledger_rules():
        await session.execute(
            text("""INSERT INTO postings (entry_id, account_id, amount)
                    SELECT :entry_id, leg.account_id, leg.amount
                    FROM unnest(CAST(:accounts AS uuid[]), CAST(:amounts AS numeric[])) AS leg(account_id, amount)"""),
            {
                "entry_id": entry_id,
                "accounts": [leg.account_id for leg in legs],
                "amounts": [leg.amount for leg in legs],
            },
        )
    return entry_id, True


async def place_hold(
    session: AsyncSession,
    *,
    account_id: uuid.UUID,
    amount: Decimal,
    reason: str,
    idempotency_key: str,
    placed_by: uuid.UUID | None = None,
) -> tuple[uuid.UUID, bool]:
    """Sets funds aside (lowers the available balance). Returns (hold id, created). `placed_by`: the user placing
    it by hand; None for a workflow's own hold (released only by that workflow)."""
    hold_id = uuid.uuid4()
    inserted = (
        await session.execute(
            text("""INSERT INTO holds (id, account_id, amount, reason, idempotency_key, status, placed_by)
                VALUES (:id, :account, :amount, :reason, :key, 'active', :placed_by)
                ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"""),
            {
                "id": hold_id,
                "account": account_id,
                "amount": amount,
                "reason": reason,
                "key": idempotency_key,
                "placed_by": placed_by,
            },
        )
    ).first()
    if inserted:
        return hold_id, True
    existing = await session.execute(
        text("SELECT id FROM holds WHERE idempotency_key = :key"), {"key": idempotency_key}
    )
    return existing.scalar_one(), False


async def release_hold(session: AsyncSession, hold_id: uuid.UUID, status: str = "released") -> bool:
    """Ends an active hold; False when it was not active (already released or captured)."""
    ended = await session.execute(
        text(
            "UPDATE holds SET status = :status, released_at = now() WHERE id = :id AND status = 'active' RETURNING id"
        ),
        {"id": hold_id, "status": status},
    )
    return ended.first() is not None
