"""Internal accounts as the endpoints of several routers see them (accounts, statements, interest, savings
products, payments), and cash paid out at the counter."""

import uuid
from decimal import Decimal

from sqlalchemy import text

from api.errors import AppError
from core import access, audit, ledger
from core.access import Entity
from core.business_time import business_today
from core.config import Settings
from domain.fx import minor_units
from models.ledger import GL_CASH, LedgerAccount
from models.users import User


def check_amount_fits(currency: str, amount: Decimal) -> None:
    """An amount in `currency` has no more decimals than the currency's minor units (1,500 JPY, not 1,500.50): a 422
    before anything is written, where the ledger's cents would take a fraction of a yen."""
    places = minor_units(currency)
    if amount != amount.quantize(Decimal(1).scaleb(-places)):
        raise AppError(
            422,
            "amount_precision",
            f"{currency} amounts have {places} decimal places",
            {"amount": str(amount), "currency": currency, "decimal_places": places},
        )


def check_transfer_currency(src: LedgerAccount, dst: LedgerAccount, amount: Decimal) -> None:
    """A transfer between two internal accounts moves one currency (the ledger holds one per entry), in its units."""
    if src.currency != dst.currency:
        raise AppError(
            422,
            "currency_mismatch",
            "both accounts must hold the same currency",
            {"from_currency": src.currency, "to_currency": dst.currency},
        )
    check_amount_fits(src.currency, amount)


async def visible_account(session, user: User, account_id: uuid.UUID) -> LedgerAccount:
    """The account if the access policy lets `user` read it; a 404 (not a 403: no hint that it exists) otherwise."""
    account: LedgerAccount = await access.visible(session, user, Entity.account, account_id)
    return account


async def withdraw(
    session, actor: User, settings: Settings, account: LedgerAccount, amount: Decimal, memo: str, key: str
) -> None:
    """A cash withdrawal at once (below the maker-checker threshold): debit the account, credit cash at bank, under a
    lock on the account so the available balance checked is the one debited. The same key again finds the entry
    (409 when it was for another amount); the caller commits."""
    idempotency_key = f"withdrawal:{actor.id}:{key}"
    done = (
        await session.execute(
            text(
                """SELECT p.amount FROM journal_entries e JOIN postings p ON p.entry_id = e.id
                   WHERE e.idempotency_key = :key AND p.account_id = :account"""
            ),
            {"key": idempotency_key, "account": account.id},
        )
    ).first()
    if done is not None:
        if done.amount != amount:
            raise AppError(409, "idempotency_key_reused", "this Idempotency-Key was used for another withdrawal")
        return
    await ledger.lock_accounts(session, [account.id])
    found = (await ledger.balances(session, [account.id])).get(account.id)
    available = found.available if found else Decimal("0.00")
    if available < amount:
        raise AppError(
            422,
            "insufficient_funds",
            "the available balance does not cover the amount",
            {"available_balance": str(available), "amount": str(amount)},
        )
    cash = await ledger.gl_account(session, GL_CASH, account.currency)
    entry_id, created = await ledger.post_entry(
        session,
        idempotency_key=idempotency_key,
        entry_type="cash_withdrawal",
        description=memo,
        effective_date=business_today(settings),
        legs=[ledger.Leg(account.id, amount), ledger.Leg(cash, -amount)],
    )
    if created:
        await audit.record(
            session,
            actor=actor.email,
            actor_id=actor.id,
            action="account.withdrawal",
            entity_type="account",
            entity_id=account.id,
            after={"journal_entry_id": str(entry_id), "amount": str(amount)},
        )
