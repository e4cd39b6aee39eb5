"""The retention workflow's side effect: every rule of core/retention.py, batch after batch, each batch its own
transaction, and the staged uploads a crash left behind, then one audit row with the counts. Heartbeats carry the counts so far: a retry after a crash goes on
from there (the rows already purged are gone, the anonymized ones skipped), and the audit row counts them once."""

import json
from typing import Any

from temporalio import activity

from core.config import Settings
from core.db import Database
from core.documents import STAGING
from core.retention import AUDIT_RUN, rules
from core.storage import storage_from_settings
from models.backups import RetentionRequest, RetentionResult

STAGED = "staged_uploads.deleted"  # sealed uploads a crash left waiting for a scan (core/documents.py STAGING)


class RetentionActivities:
    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings
        self.storage = storage_from_settings(settings)

    @activity.defn
    async def apply_retention(self, req: RetentionRequest) -> RetentionResult:
        details = activity.info().heartbeat_details
        counts: dict[str, Any] = dict(details[0]) if details else {}
        cutoffs = {}
        for rule in rules(self.settings):
            cutoff = req.now - rule.retention
            cutoffs[rule.name] = cutoff.isoformat()
            counts.setdefault(rule.name, 0)
            while True:
                async with self.db.session() as session, session.begin():
                    touched = len(
                        (
                            await session.execute(
                                rule.batch, {"cutoff": cutoff, "batch": self.settings.retention_batch_size}
                            )
                        ).all()
                    )
                if not touched:
                    break
                counts[rule.name] += touched
                activity.heartbeat(counts)
        cutoff = req.now - self.settings.staged_upload_retention
        cutoffs[STAGED] = cutoff.isoformat()
        counts.setdefault(STAGED, 0)
        for key in await self.storage.keys_older_than(STAGING, cutoff):
            await self.storage.delete(key)  # a retried run finds it gone: counted once
            counts[STAGED] += 1
            activity.heartbeat(counts)
        async with self.db.session() as session, session.begin():
            await session.execute(
                AUDIT_RUN,
                {
                    "actor": f"system:{activity.info().workflow_id}",
                    "run_id": req.run_id,
                    "after": json.dumps({"counts": counts, "cutoffs": cutoffs}),
                },
            )
        activity.logger.info("retention: %s", counts)
        return RetentionResult(counts=counts)
