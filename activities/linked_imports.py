"""A linked account's transactions read from the account-linking provider's feed (as Plaid's /transactions/sync)
into the member's imported lines, a page at a time (workflows/linked_import.py). Each page is one transaction that
locks the import row, checks the row's cursor is still the one the page started from (a retried page that committed
already does nothing), writes the page's lines (added ON CONFLICT DO NOTHING on their provider id, modified updated,
removed deleted) and moves the cursor on with the counts. The next sync of the account starts from the cursor the
last completed one ended at, so each of the provider's transactions is one line, however often it is synced."""

import hashlib
import logging
import uuid
from datetime import date
from decimal import Decimal, InvalidOperation

from sqlalchemy import text
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.config import Settings
from core.crypto import AccountNumberCipher
from core.db import Database
from core.linking import LinkingClient, LinkingError, LinkingUnavailable
from models.external_accounts import ExternalAccount
from models.money import CategorySource, ImportStatus, TransactionImport
from models.transaction_imports import SyncPage, SyncPageOutcome

log = logging.getLogger(__name__)

# The provider's primary categories, as our predefined ones (rules applied after the load still win).
PROVIDER_CATEGORIES = {
    "INCOME": "income",
    "FOOD_AND_DRINK": "dining",
    "TRANSPORTATION": "transport",
    "RENT_AND_UTILITIES": "utilities",
    "ENTERTAINMENT": "entertainment",
    "GENERAL_MERCHANDISE": "shopping",
    "TRAVEL": "travel",
    "MEDICAL": "health",
    "BANK_FEES": "fees",
    "TRANSFER_IN": "transfers",
    "TRANSFER_OUT": "transfers",
    "LOAN_PAYMENTS": "loans",
}

INSERT = text("""
    INSERT INTO imported_transactions (org_id, user_id, external_account_id, import_id, source, posted_on, amount,
                                       currency, merchant, description, category_key, category_source, dedup_key)
    VALUES (:org_id, :user_id, :external_account_id, :import_id, 'linked', :posted_on, :amount, :currency, :merchant,
            :description, :category_key, :category_source, :dedup_key)
    ON CONFLICT (user_id, dedup_key) DO NOTHING
    RETURNING id
""")
MODIFY = text("""
    UPDATE imported_transactions SET posted_on = :posted_on, amount = :amount, currency = :currency,
                                     merchant = :merchant, description = :description
     WHERE user_id = :user_id AND dedup_key = :dedup_key
""")
REMOVE = text("DELETE FROM imported_transactions WHERE user_id = :user_id AND dedup_key = :dedup_key")


def dedup_key(provider_transaction_id: str) -> str:
    """A provider transaction's line, whichever sync brings it (a CSV line's key is a different hash)."""
    return hashlib.sha256(f"linked:{provider_transaction_id}".encode()).hexdigest()


class BadLine(ValueError):
    pass


def line_of(txn: dict) -> dict:
    """Our columns for one of the provider's transactions: its amount negated (the provider counts money out as
    positive, we count money in), at most 2 decimals; a line we cannot read is a BadLine."""
    try:
        amount = -Decimal(str(txn["amount"]))
        if amount.as_tuple().exponent < -2 or not amount.is_finite() or amount == 0:  # type: ignore[operator]
            raise BadLine(f"amount {txn['amount']!r}")
        currency = (txn.get("iso_currency_code") or "USD").upper()
        if len(currency) != 3 or not currency.isalpha():
            raise BadLine(f"currency {currency!r}")
        primary = (txn.get("personal_finance_category") or {}).get("primary", "")
        category = PROVIDER_CATEGORIES.get(primary)
        return {
            "posted_on": date.fromisoformat(txn["date"]),
            "amount": amount.quantize(Decimal("0.01")),
            "currency": currency,
            "merchant": (txn.get("merchant_name") or None) and str(txn["merchant_name"])[:200],
            "description": str(txn.get("name") or "")[:500],
            "category_key": category or "uncategorized",
            "category_source": CategorySource.provider if category else CategorySource.default,
            "dedup_key": dedup_key(str(txn["transaction_id"])),
        }
    except (KeyError, TypeError, ValueError, InvalidOperation) as error:
        raise BadLine(str(error)) from error


class LinkedImportActivities:
    def __init__(self, db: Database, settings: Settings, linking: LinkingClient | None = None):
        self.db, self.settings = db, settings
        self.linking = linking or LinkingClient(settings)
        self.cipher = AccountNumberCipher.from_settings(settings)

    @activity.defn
    async def sync_page(self, req: SyncPage) -> SyncPageOutcome:
        async with self.db.session() as session:
            row = await session.get(TransactionImport, req.import_id)
            assert row is not None, f"transaction import {req.import_id} not found"
            if row.status != ImportStatus.running or row.cursor != req.cursor:  # this page committed already
                return outcome(row, has_more=row.status == ImportStatus.running)
            account = await session.get(ExternalAccount, row.external_account_id)
            item = None
            if account is not None and account.provider_item_id:
                item = (
                    await session.execute(
                        text("SELECT access_token_encrypted FROM linked_items WHERE provider_item_id = :item"),
                        {"item": account.provider_item_id},
                    )
                ).first()
        if account is None or item is None or not account.provider_account_id:
            raise ApplicationError("the account is not linked at the provider", type="NotLinked", non_retryable=True)
        try:
            page = await self.linking.sync_transactions(
                self.cipher.decrypt(item[0]), req.cursor, self.settings.import_sync_page
            )
        except LinkingError as error:  # the provider refused (a revoked item, a bad cursor): retrying cannot help
            raise ApplicationError(f"{error.code}: {error}", type="LinkingRefused", non_retryable=True) from error
        except LinkingUnavailable as error:
            raise ApplicationError(str(error), type="LinkingUnavailable") from error  # retried by the policy
        mine = [t for t in page.get("added", []) if t.get("account_id") == account.provider_account_id]
        changed = [t for t in page.get("modified", []) if t.get("account_id") == account.provider_account_id]
        removed = [str(t.get("transaction_id")) for t in page.get("removed", [])]
        return await self.write_page(row.id, req.cursor, mine, changed, removed, page)

    async def write_page(
        self, import_id: uuid.UUID, cursor: str | None, added: list, modified: list, removed: list, page: dict
    ) -> SyncPageOutcome:
        async with self.db.session() as session, session.begin():
            row = await session.get(TransactionImport, import_id, with_for_update=True)
            assert row is not None
            if row.status != ImportStatus.running or row.cursor != cursor:  # a concurrent retry won
                return outcome(row, has_more=row.status == ImportStatus.running)
            whose = {"org_id": row.org_id, "user_id": row.user_id}
            loaded = rejected = unreadable_added = 0
            for txn in added:
                try:
                    line = line_of(txn)
                except BadLine as error:
                    rejected += 1
                    unreadable_added += 1
                    log.warning("linked transaction skipped", extra={"import_id": str(import_id), "error": str(error)})
                    continue
                values = {**whose, "external_account_id": row.external_account_id, "import_id": row.id, **line}
                loaded += len((await session.execute(INSERT, values)).all())
            for txn in modified:
                try:
                    line = line_of(txn)
                except BadLine:
                    rejected += 1
                    continue
                await session.execute(MODIFY, {"user_id": row.user_id, **line})
            for provider_id in removed:
                await session.execute(REMOVE, {"user_id": row.user_id, "dedup_key": dedup_key(provider_id)})
            read = len(added) + len(modified)
            row.rows_read += read
            row.rows_loaded += loaded
            row.rows_rejected += rejected
            row.rows_duplicate += len(added) - loaded - unreadable_added  # synced before: already a line
            row.cursor = str(page.get("next_cursor") or cursor or "")[:200] or None
            activity.heartbeat()
        return outcome(row, has_more=bool(page.get("has_more")))


def outcome(row: TransactionImport, has_more: bool) -> SyncPageOutcome:
    return SyncPageOutcome(
        status=row.status,
        rows_read=row.rows_read,
        rows_loaded=row.rows_loaded,
        rows_duplicate=row.rows_duplicate,
        rows_rejected=row.rows_rejected,
        error=row.error,
        next_cursor=row.cursor,
        has_more=has_more,
    )
