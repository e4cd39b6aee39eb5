"""Postgres for `make run` and `make test`: DATABASE_URL when set, else an embedded PostgreSQL 16 (pgserver)."""

import logging
import os
import pwd
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {"max_connections": "'300'", "shared_buffers": "'1GB'"}  # as postgresql.auto.conf writes them


def embedded_postgres(data_dir: Path, delete_on_exit: bool, stop_on_exit: bool = True) -> str:
    """The server of `data_dir`, started unless it runs. At this process's exit it is deleted, or stopped, or
    (stop_on_exit=False: the caller stops it) left running."""
    import pgserver  # imported lazily: only needed without DATABASE_URL

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    cleanup_mode = "delete" if delete_on_exit else "stop" if stop_on_exit else None
    server = pgserver.get_server(data_dir, cleanup_mode=cleanup_mode)
    # More connections than the default 100 (API, worker and benchmarks each keep a pool), and a cache that holds the
    # indexes bulk work writes (an import of 1,000,000 lines slowed by a third once they outgrew the default 128 MB).
    auto_conf = (data_dir / "postgresql.auto.conf").read_text()
    if any(f"{name} = {value}" not in auto_conf for name, value in SETTINGS.items()):
        for name, value in SETTINGS.items():
            server.psql(f"ALTER SYSTEM SET {name} = {value};")
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made at import time, per binary

        # Logging to the data dir's `log`, as pgserver's own start does (else the restarted server's log is lost).
        pg_ctl(["-w", "-l", str(data_dir / "log"), "restart"], pgdata=data_dir, user=server.system_user)
        server.ensure_postgres_running()
    return server.get_uri()


def alembic_config(database_url: str) -> Config:
    """The project's alembic configuration, pointed at `database_url`."""
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    return config


def migrate(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")


def postmaster_pid(data_dir: Path) -> int | None:
    """The pid that postmaster.pid names: the embedded server of `data_dir`, if one ran there."""
    try:
        return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return None


@contextmanager
def streaming_standby(primary_url: str, data_dir: Path) -> Iterator[str]:
    """A hot standby of an embedded primary, streaming from it (pg_basebackup -R), on its own socket in
    `data_dir`: its URL while the block runs; stopped after. The read replica of the tests, as docker-compose's
    postgres-replica is in production."""
    from pgserver._commands import POSTGRES_BIN_PATH

    user = "pgserver" if os.geteuid() == 0 else None  # pgserver runs the server as this user when we are root
    data_dir.mkdir(parents=True)
    if user:
        from pgserver.utils import ensure_prefix_permissions

        ensure_prefix_permissions(data_dir)  # the server's user must reach it, as pgserver does for the primary's
        entry = pwd.getpwnam(user)
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    data_dir.chmod(0o700)
    copied = subprocess.run(
        [POSTGRES_BIN_PATH / "pg_basebackup", "-d", primary_url, "-D", data_dir, "-R", "-X", "stream", "-c", "fast"],
        user=user,
        capture_output=True,
        text=True,
    )
    if copied.returncode:
        raise RuntimeError(f"pg_basebackup failed: {copied.stderr[-2000:]}")
    for lock in data_dir.glob(".s.PGSQL.*"):  # the primary's socket lock, copied with its data dir
        lock.unlink()
    pg_ctl: list[str | Path] = [POSTGRES_BIN_PATH / "pg_ctl", "-D", data_dir, "-w"]
    subprocess.run(
        [*pg_ctl, "-l", data_dir / "standby.log", "-o", f"-k {data_dir} -c listen_addresses=''", "start"],
        user=user,
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        yield f"postgresql://postgres:@/postgres?host={data_dir}"
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "stop"], user=user, check=False, capture_output=True, timeout=60)
