"""Presence across API processes: `live_sessions` holds each process's socket count per user, refreshed by its
heartbeat. A user is online while a fresh row of theirs exists. Going online (a first row) or offline (the last one
gone: a last socket closed, or a dead process's rows swept) is announced on `live_updates` to their partners: the
members who share with them or with whom they share. Each change of a user's rows holds a transaction-scoped advisory
lock on that user, so two processes never both announce (or both miss) the same transition."""

import uuid
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from core.db import Database

PARTNERS = """
    SELECT grantee_id AS partner FROM money_shares WHERE owner_id = :user AND revoked_at IS NULL
    UNION
    SELECT owner_id FROM money_shares WHERE grantee_id = :user AND revoked_at IS NULL
"""
LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended('live_sessions:' || :user, 0))")
ONLINE = text(
    "SELECT EXISTS (SELECT 1 FROM live_sessions WHERE user_id = :user AND last_seen > now() - :expiry * interval '1 s')"
)
ANNOUNCE = text(f"""
    SELECT pg_notify('live_updates', json_build_object(
        'user_ids', json_agg(partner), 'type', 'presence',
        'data', json_build_object('user_id', CAST(:user AS uuid), 'online', CAST(:online AS boolean)))::text)
      FROM ({PARTNERS}) partners
    HAVING count(*) > 0
""")


class PartnerPresence(BaseModel):
    user_id: uuid.UUID
    email: str
    full_name: str | None
    online: bool
    last_seen: datetime | None


async def _online(session: AsyncSession, user_id: uuid.UUID, expiry: timedelta) -> bool:
    return bool((await session.execute(ONLINE, {"user": str(user_id), "expiry": expiry.total_seconds()})).scalar())


async def set_sockets(db: Database, process_id: str, user_id: uuid.UUID, sockets: int, expiry: timedelta) -> None:
    """This process now holds `sockets` sockets of the user (0: none): its row follows, and a transition of the
    user's presence is announced (NOTIFY, sent at commit)."""
    user = str(user_id)
    async with db.session() as session, session.begin():
        await session.execute(LOCK, {"user": user})
        was_online = await _online(session, user_id, expiry)
        if sockets > 0:
            await session.execute(
                text(
                    "INSERT INTO live_sessions (process_id, user_id, sockets, last_seen) VALUES (:p, :user, :n, now()) "
                    "ON CONFLICT (process_id, user_id) DO UPDATE SET sockets = EXCLUDED.sockets, last_seen = now()"
                ),
                {"p": process_id, "user": user, "n": sockets},
            )
        else:
            await session.execute(
                text("DELETE FROM live_sessions WHERE process_id = :p AND user_id = :user"),
                {"p": process_id, "user": user},
            )
        online = await _online(session, user_id, expiry)
        if online != was_online:
            await session.execute(ANNOUNCE, {"user": user, "online": online})


async def heartbeat(db: Database, process_id: str, counts: dict[uuid.UUID, int], expiry: timedelta) -> None:
    """This process is alive: its rows are refreshed. A row another process swept meanwhile (this one was thought
    dead) is written again, and its user announced online again."""
    async with db.session() as session, session.begin():
        refreshed = await session.execute(
            text("UPDATE live_sessions SET last_seen = now() WHERE process_id = :p RETURNING user_id"),
            {"p": process_id},
        )
        present = set(refreshed.scalars().all())
    for user_id, sockets in counts.items():
        if user_id not in present and sockets > 0:
            await set_sockets(db, process_id, user_id, sockets, expiry)


async def sweep(db: Database, expiry: timedelta) -> list[uuid.UUID]:
    """Drops the rows of processes not heard of within `expiry` (dead ones), announcing each user left with no
    fresh row as offline. Returns the users swept."""
    async with db.session() as session, session.begin():
        swept = await session.execute(
            text("DELETE FROM live_sessions WHERE last_seen <= now() - :expiry * interval '1 s' RETURNING user_id"),
            {"expiry": expiry.total_seconds()},
        )
        users = sorted(set(swept.scalars().all()))
    for user_id in users:
        async with db.session() as session, session.begin():
            await session.execute(LOCK, {"user": str(user_id)})
            if not await _online(session, user_id, expiry):
                await session.execute(ANNOUNCE, {"user": str(user_id), "online": False})
    return users


async def forget_process(db: Database, process_id: str, expiry: timedelta) -> None:
    """A process shutting down: its users go offline now (where no other process holds them), not at expiry."""
    async with db.session() as session:
        users = (
            (await session.execute(text("SELECT user_id FROM live_sessions WHERE process_id = :p"), {"p": process_id}))
            .scalars()
            .all()
        )
    for user_id in users:
        await set_sockets(db, process_id, user_id, 0, expiry)


async def partners(session: AsyncSession, user_id: uuid.UUID, expiry: timedelta) -> list[PartnerPresence]:
    """The members sharing with `user_id` or shared with, each online or not (by a fresh live_sessions row)."""
    rows = await session.execute(
        text(f"""
            SELECT u.id, u.email, u.full_name, s.last_seen, coalesce(s.last_seen > now() - :expiry * interval '1 s',
                   false) AS online
              FROM ({PARTNERS}) p
              JOIN users u ON u.id = p.partner
              LEFT JOIN LATERAL (SELECT max(last_seen) AS last_seen FROM live_sessions WHERE user_id = u.id) s ON true
             ORDER BY u.email
        """),
        {"user": str(user_id), "expiry": expiry.total_seconds()},
    )
    return [
        PartnerPresence(user_id=r.id, email=r.email, full_name=r.full_name, online=r.online, last_seen=r.last_seen)
        for r in rows
    ]
