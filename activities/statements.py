"""Monthly statements: each activity writes one keyset batch of statement rows in one set-based statement."""

from temporalio import activity

from core import statements
from core.db import Database
from models.statements import StatementBatch, StatementBatchResult


class StatementActivities:
    def __init__(self, db: Database):
        self.db = db

    @activity.defn
    async def write_statements_batch(self, batch: StatementBatch) -> StatementBatchResult:
        """Rows and owner notifications commit together, so a retry after a crash writes each exactly once."""
        async with self.db.session() as session, session.begin():
            result = await statements.write_batch(session, batch)
        activity.logger.info(
            "statements %s after %s: %d accounts, %d written",
            batch.period,
            batch.after_account_id,
            result.accounts,
            result.written,
        )
        return result
