"""The backup workflow's side effects: pg_dump into the backup directory, verified and recorded in `backups`
(core/backups.py), and pruning past the retention. A dump is named for its run's scheduled time, so a retry
overwrites the same file and updates the same row."""

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from temporalio import activity

from core.backups import Dump, dump, prune
from core.config import Settings
from core.db import Database, sqlalchemy_url
from models.backups import BackupRequest, BackupResult, PruneRequest

RECORD = text("""
INSERT INTO backups (name, database, size_bytes, sha256, toc_entries, started_at, finished_at)
VALUES (:name, :database, :size_bytes, :sha256, :toc_entries, :started_at, :finished_at)
ON CONFLICT (name) DO UPDATE SET size_bytes = EXCLUDED.size_bytes, sha256 = EXCLUDED.sha256,
    toc_entries = EXCLUDED.toc_entries, started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
    pruned_at = NULL
""")
MARK_PRUNED = text("UPDATE backups SET pruned_at = now() WHERE name = ANY(:names) AND pruned_at IS NULL")


def record_dump(database_url: str, taken: Dump, pruned: list[str]) -> None:
    """Records a dump, and the dumps pruned, from the command line (the activities run the same statements)."""
    engine = create_engine(sqlalchemy_url(database_url), poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(RECORD, vars(taken))
            connection.execute(MARK_PRUNED, {"names": pruned})
    finally:
        engine.dispose()


class BackupActivities:
    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings

    @activity.defn
    async def take_backup(self, req: BackupRequest) -> BackupResult:
        work = asyncio.create_task(
            dump(self.settings, self.settings.database_url, Path(self.settings.backup_dir), req.at)
        )
        while not work.done():  # pg_dump of a large database takes a while: say it is alive
            activity.heartbeat()
            await asyncio.wait({work}, timeout=10)
        taken = work.result()
        async with self.db.session() as session, session.begin():
            await session.execute(RECORD, vars(taken))
        activity.logger.info("backup %s: %d bytes, %d entries", taken.name, taken.size_bytes, taken.toc_entries)
        return BackupResult(
            name=taken.name, size_bytes=taken.size_bytes, sha256=taken.sha256, toc_entries=taken.toc_entries
        )

    @activity.defn
    async def prune_backups(self, req: PruneRequest) -> list[str]:
        keep: timedelta = self.settings.backup_retention
        pruned = prune(Path(self.settings.backup_dir), keep, req.now)
        if pruned:
            async with self.db.session() as session, session.begin():
                await session.execute(MARK_PRUNED, {"names": pruned})
        return pruned
