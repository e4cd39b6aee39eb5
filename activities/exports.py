"""An export's side effects: its file made and stored sealed once (a transactions export as its requester may see the
rows now; a GDPR export of everything held on the member), then its requester told once, by email and in-app, with
a signed link. Making is idempotent by the row: an export already `ready` is not made again; one interrupted before
its commit is made again over the same object key."""

import asyncio
import hashlib
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.notifications import NotificationActivities
from core.config import Settings
from core.crypto import FileCipher
from core.db import Database
from core.storage import ObjectStorage, storage_from_settings
from domain import export_formats, export_links, exports, gdpr
from domain.export_filters import ExportFilters, rows_query
from models.exports import ExportInput, ExportKind, ExportOutcome, ExportStatus, TransactionExport
from models.notifications import NotifyUsers
from models.users import User


def export_key(export_id: uuid.UUID) -> str:
    return f"exports/{export_id}"


def sealing_context(export_id: uuid.UUID) -> str:
    """The associated data of an export's ciphertext: another export's row cannot open it."""
    return f"transaction-export:{export_id}"


class ExportActivities:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        notifications: NotificationActivities,
        storage: ObjectStorage | None = None,
    ):
        self.db, self.settings, self.notifications = db, settings, notifications
        self.storage = storage or storage_from_settings(settings)
        self.cipher = FileCipher.from_settings(settings)

    async def _transactions_file(self, session, export: TransactionExport, path: Path) -> int:
        requester = await session.get(User, export.requested_by)
        if requester is None or not requester.is_active:
            raise ApplicationError("the requester is gone", type="NoRequester", non_retryable=True)
        filters = ExportFilters.model_validate(export.filters or {})
        query = rows_query(requester, filters)
        if export.format in ("csv", "json"):
            stream = export_formats.csv_stream if export.format == "csv" else export_formats.json_stream
            result = await session.stream(query)
            count = 0

            async def rows():
                nonlocal count
                async for row in result.mappings():
                    count += 1
                    yield row

            with path.open("wb") as out:
                async for chunk in stream(rows()):
                    out.write(chunk)
            return count
        if export.format == "xlsx":  # row by row into the write-only workbook, saved to the file
            sheet, count = export_formats.XlsxSheet(), 0
            result = await session.stream(query)
            async for row in result.mappings():
                sheet.append(row)
                count += 1
            await asyncio.to_thread(sheet.save, path)
            return count
        all_rows = list((await session.execute(query)).mappings().all())  # a statement: its totals need them all
        opening = await exports.opening_total(session, requester, filters)
        statement = export_formats.Statement(filters.date_from, filters.date_to, opening, all_rows)
        content = await asyncio.to_thread(export_formats.pdf_bytes, statement)
        await asyncio.to_thread(path.write_bytes, content)
        return len(all_rows)

    @activity.defn
    async def make_export(self, req: ExportInput) -> ExportOutcome:
        async with self.db.session() as session, session.begin():
            export = await session.get(TransactionExport, req.export_id, with_for_update=True)
            if export is None:
                raise ApplicationError(f"export {req.export_id} not found", type="NotFound", non_retryable=True)
            if export.status != ExportStatus.queued:
                return ExportOutcome(export_id=export.id, status=ExportStatus(export.status), failure=export.failure)
            with tempfile.TemporaryDirectory(prefix="export-") as folder:
                path = Path(folder) / "file"
                if export.kind == ExportKind.gdpr:
                    assert export.user_id is not None
                    count = await gdpr.build_zip(session, self.storage, self.cipher, export.user_id, path)
                    filename = f"gdpr-{export.user_id}.zip"
                else:
                    count = await self._transactions_file(session, export, path)
                    filename = f"transactions-{export.id}.{export.format}"
                content = await asyncio.to_thread(path.read_bytes)
            key_id, sealed = self.cipher.encrypt(content, sealing_context(export.id))
            key = export_key(export.id)
            await self.storage.put(key, sealed)
            export.status, export.filename = ExportStatus.ready, filename
            export.content_type = export_formats.CONTENT_TYPES[export.format]
            export.size_bytes, export.row_count = len(content), count
            export.storage_key, export.key_id, export.finished_at = key, key_id, datetime.now(UTC)
            activity.logger.info(
                "export %s: %s, %d rows, %d bytes, sha256 %s",
                export.id,
                filename,
                count,
                len(content),
                hashlib.sha256(content).hexdigest(),
            )
            return ExportOutcome(export_id=export.id, status=ExportStatus.ready)

    @activity.defn
    async def fail_export(self, outcome: ExportOutcome) -> ExportOutcome:
        """Records why the export could not be made (one already ready stays ready)."""
        async with self.db.session() as session, session.begin():
            await session.execute(
                text(
                    "UPDATE transaction_exports SET status = 'failed', failure = :why, finished_at = now() "
                    "WHERE id = :id AND status = 'queued'"
                ),
                {"id": outcome.export_id, "why": (outcome.failure or "the export could not be made")[:500]},
            )
            export = await session.get(TransactionExport, outcome.export_id)
            assert export is not None
            return ExportOutcome(export_id=export.id, status=ExportStatus(export.status), failure=export.failure)

    @activity.defn
    async def notify_export(self, req: ExportInput) -> int:
        """The requester, by email and in-app, once per export: its signed link, or why it failed."""
        async with self.db.session() as session:
            export = await session.get(TransactionExport, req.export_id)
            assert export is not None
        ready = export.status == ExportStatus.ready
        return await self.notifications.notify_users(
            NotifyUsers(
                user_ids=[export.requested_by],
                kind="export_ready" if ready else "export_failed",
                template="data_export",
                context={
                    "ready": ready,
                    "what": "GDPR export" if export.kind == ExportKind.gdpr else "transactions export",
                    "filename": export.filename or "",
                    "rows": export.row_count or 0,
                    "failure": export.failure or "",
                    "link": export_links.signed_url(self.settings, export.id, datetime.now(UTC)) if ready else "",
                    "valid_for": str(self.settings.export_link_ttl),
                },
                entity_type="transaction_export",
                entity_id=str(export.id),
                dedupe_key=f"export:{export.id}",
            )
        )
