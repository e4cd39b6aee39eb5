"""The writing process drops its own cache entries when an ORM write of a cached table commits.

The triggers' notification reaches every process's listener a moment after the commit; the process that wrote does
not wait for it: an API request that disables a user, and the next request of that user, never see the old row.
Sessions made by core/db.py carry their cache in `session.info` (CACHE_INFO).
"""

from sqlalchemy import event
from sqlalchemy.orm import Session, UOWTransaction

from core.cache import TABLES
from core.cache.store import Cache

CACHE_INFO = "cache"
_WRITTEN = "cache_written"  # (table, id) flushed by the session's current transaction


@event.listens_for(Session, "after_flush")
def _note_written(session: Session, _flush: UOWTransaction) -> None:
    if CACHE_INFO not in session.info:
        return
    for row in (*session.new, *session.dirty, *session.deleted):
        table = getattr(row, "__tablename__", None)
        if table in TABLES:
            session.info.setdefault(_WRITTEN, set()).add((table, str(row.id)))


@event.listens_for(Session, "after_commit")
def _drop_written(session: Session) -> None:
    cache: Cache | None = session.info.get(CACHE_INFO)
    for table, key in session.info.pop(_WRITTEN, ()):
        if cache is not None:
            cache.invalidate(table, key)


@event.listens_for(Session, "after_rollback")
def _forget_written(session: Session) -> None:
    # Loads read committed rows on sessions of their own (core/cache/reference.py): nothing of this one was cached.
    session.info.pop(_WRITTEN, None)
