"""Backups of the application database: pg_dump in custom format into BACKUP_DIR, verified by reading its table
of contents back with pg_restore --list, and pruned past BACKUP_RETENTION. The BackupWorkflow (daily Schedule)
runs these through activities/backups.py; operators run them by hand:

    python -m core.backups backup                       # make backup
    python -m core.backups list
    python -m core.backups restore [NAME] [--confirm DB] # make restore BACKUP=NAME CONFIRM=DB (latest by default)

A restore replaces every object of the dump in DATABASE_URL (pg_restore --clean, in one transaction: it applies
whole or not at all). Stop the API and the worker first. With ENVIRONMENT=production it refuses unless --confirm
names the database it overwrites.
"""

import asyncio
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import typer

from core.config import PRODUCTION, Settings
from core.db import libpq_url

SUFFIX = ".dump"
STAMP = "%Y%m%dT%H%M%SZ"
# A dump that lists these tables' data can rebuild the ledger: the verification insists on them.
LEDGER_TABLES = ("journal_entries", "postings", "ledger_accounts")


class BackupError(RuntimeError):
    """pg_dump or pg_restore failed, or a dump did not verify."""


def pg_tool(name: str, settings: Settings) -> str:
    """The path of a PostgreSQL client tool: PG_BIN_DIR's, else the embedded PostgreSQL's (pgserver), else PATH's."""
    candidates = [Path(settings.pg_bin_dir) / name] if settings.pg_bin_dir else []
    try:
        from pgserver._commands import POSTGRES_BIN_PATH

        candidates.append(Path(POSTGRES_BIN_PATH) / name)
    except ImportError:
        pass
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    if found := shutil.which(name):
        return found
    raise BackupError(f"{name} not found: set PG_BIN_DIR to the directory of PostgreSQL's client tools")


def database_name(database_url: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(libpq_url(database_url)).get("dbname") or "postgres")


def backup_name(database_url: str, at: datetime) -> str:
    """`<database>-<UTC time>.dump`: names sort by time, and a retry of one scheduled run reuses its name."""
    return f"{database_name(database_url)}-{at.astimezone(UTC):{STAMP}}{SUFFIX}"


def taken_at(path: Path) -> datetime | None:
    """The time in a dump's name (None for a file that is not one of ours)."""
    if path.suffix != SUFFIX or "-" not in path.stem:
        return None
    try:
        return datetime.strptime(path.stem.rsplit("-", 1)[1], STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def backups(directory: Path) -> list[Path]:
    """Our dumps in `directory`, oldest first."""
    if not directory.is_dir():
        return []
    found = [(at, p) for p in directory.iterdir() if (at := taken_at(p)) is not None]
    return [p for _, p in sorted(found)]


@dataclass(frozen=True)
class Dump:
    name: str
    database: str
    size_bytes: int
    sha256: str
    toc_entries: int
    started_at: datetime
    finished_at: datetime


def _connection(database_url: str) -> tuple[str, dict[str, str]]:
    """The conninfo for a tool's --dbname, and its environment: the password goes in PGPASSWORD, never on a
    command line that `ps` shows."""
    params = psycopg.conninfo.conninfo_to_dict(libpq_url(database_url))
    password = params.pop("password", None)
    return psycopg.conninfo.make_conninfo("", **params), ({"PGPASSWORD": str(password)} if password else {})


async def _run(*args: str, env: dict[str, str] | None = None) -> str:
    """Runs a tool; its stdout, or BackupError with its stderr."""
    process = await asyncio.create_subprocess_exec(
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PGCONNECT_TIMEOUT": "10", **(env or {})},
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise BackupError(
            f"{Path(args[0]).name} exited with {process.returncode}: {err.decode(errors='replace')[-2000:]}"
        )
    return out.decode(errors="replace")


async def verify(settings: Settings, path: Path) -> int:
    """Reads the whole dump back: its entry count, once it holds the ledger's table data. The table of contents
    (pg_restore --list) sits at the head of the file, so a file cut short still lists; restoring it as a script to
    nowhere reads every data block, and a truncated or corrupt file fails here, not on the day it is needed."""
    toc = await _run(pg_tool("pg_restore", settings), "--list", str(path))
    entries = [line for line in toc.splitlines() if line and not line.startswith(";")]
    missing = [t for t in LEDGER_TABLES if not any(f"TABLE DATA public {t} " in line for line in entries)]
    if missing:
        raise BackupError(f"{path.name} holds no data of {', '.join(missing)}")
    await _run(pg_tool("pg_restore", settings), "--file", os.devnull, str(path))
    return len(entries)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


async def dump(settings: Settings, database_url: str, directory: Path, at: datetime) -> Dump:
    """pg_dump -Fc of `database_url` into `directory`, named for `at`, verified. Written to a temporary name and
    renamed once verified: a file with our name is always a whole, verified dump, and a retry overwrites."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    name = backup_name(database_url, at)
    partial = directory / f".{name}.partial"
    started = datetime.now(UTC)
    await _run(
        pg_tool("pg_dump", settings), "--format=custom", "--file", str(partial), "--dbname", libpq_url(database_url)
    )
    try:
        toc_entries = await verify(settings, partial)
        size, sha256 = partial.stat().st_size, await asyncio.to_thread(_sha256, partial)
        partial.replace(directory / name)
    finally:
        partial.unlink(missing_ok=True)
    return Dump(name, database_name(database_url), size, sha256, toc_entries, started, datetime.now(UTC))


def prune(directory: Path, keep: timedelta, now: datetime) -> list[str]:
    """Deletes our dumps taken more than `keep` before `now`, but never the newest one. The names deleted."""
    found = backups(directory)
    pruned = []
    for path in found[:-1]:
        at = taken_at(path)
        if at is not None and at < now - keep:
            path.unlink(missing_ok=True)
            pruned.append(path.name)
    return pruned


def resolve(directory: Path, name: str | None) -> Path:
    """The dump called `name` in `directory`, or the newest one."""
    if name:
        path = directory / Path(name).name
        if taken_at(path) is None or not path.is_file():
            raise BackupError(f"no backup {name!r} in {directory}")
        return path
    found = backups(directory)
    if not found:
        raise BackupError(f"no backups in {directory}")
    return found[-1]


def confirmation_error(settings: Settings, database_url: str, confirm: str | None) -> str | None:
    """Why a restore must not run: in production, unless `confirm` names the database it overwrites."""
    if settings.environment.strip().lower() != PRODUCTION:
        return None
    target = database_name(database_url)
    if confirm != target:
        return f"ENVIRONMENT=production: a restore overwrites database {target!r}; confirm with --confirm {target}"
    return None


async def restore(settings: Settings, database_url: str, path: Path) -> None:
    """Replaces every object of the dump in `database_url`, in one transaction (all or nothing). Objects created
    since the dump was taken and not in it are left as they are."""
    await verify(settings, path)
    conninfo, env = _connection(database_url)
    await _run(
        pg_tool("pg_restore", settings),
        "--clean",
        "--if-exists",
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
        "--dbname",
        conninfo,
        str(path),
        env=env,
    )


# What a restore must give back exactly: every journal entry, every posting and every account's balance.
LEDGER_CHECKSUM = """
SELECT
    (SELECT md5(coalesce(string_agg(concat_ws('|', id, idempotency_key, entry_type, description, effective_date,
                                              payment_id, created_at), ',' ORDER BY id), '')) FROM journal_entries),
    (SELECT md5(coalesce(string_agg(concat_ws('|', id, entry_id, account_id, amount), ',' ORDER BY id), ''))
       FROM postings),
    (SELECT md5(coalesce(string_agg(concat_ws('|', account_id, ledger_balance, held), ',' ORDER BY account_id), ''))
       FROM account_balances),
    (SELECT count(*) FROM postings)
"""


def ledger_checksum(database_url: str) -> tuple[str, int]:
    """A checksum of the journal entries, postings and balances of `database_url`, and the number of postings."""
    with psycopg.connect(libpq_url(database_url)) as conn:
        entries, postings, balances, count = conn.execute(LEDGER_CHECKSUM).fetchone()  # type: ignore[misc]
    return hashlib.sha256(f"{entries}{postings}{balances}".encode()).hexdigest(), count


# The command line (make backup, make restore).

cli = typer.Typer(help="Backups of the application database.", no_args_is_help=True, add_completion=False)


def _settings() -> Settings:
    from core.config import get_settings

    settings = get_settings()
    if not settings.database_url:  # make run's embedded PostgreSQL (started, and left running, if it is not up)
        from devstack.postgres import ROOT, embedded_postgres

        data = Path(os.environ.get("BACKOFFICE_DATA_DIR") or ROOT / ".data").resolve()
        url = embedded_postgres(data / "postgres", delete_on_exit=False, stop_on_exit=False)
        settings = settings.model_copy(update={"database_url": url})
    return settings


@cli.command()
def backup() -> None:
    """Dump DATABASE_URL now, verify it, record it, prune past the retention."""
    from activities.backups import record_dump

    settings = _settings()
    directory = Path(settings.backup_dir)
    now = datetime.now(UTC)
    try:
        taken = asyncio.run(dump(settings, settings.database_url, directory, now))
    except BackupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    pruned = prune(directory, settings.backup_retention, now)
    record_dump(settings.database_url, taken, pruned)
    typer.echo(
        f"{directory / taken.name}: {taken.size_bytes} bytes, {taken.toc_entries} entries, sha256 {taken.sha256}"
    )
    for name in pruned:
        typer.echo(f"pruned {name}")


@cli.command("list")
def list_() -> None:
    """The dumps in BACKUP_DIR, oldest first."""
    for path in backups(Path(_settings().backup_dir)):
        typer.echo(f"{path.name}  {path.stat().st_size} bytes")


@cli.command("restore")
def restore_(
    name: str = typer.Argument(None, help="a dump's file name in BACKUP_DIR; the newest when omitted"),
    confirm: str = typer.Option(None, help="the name of the database overwritten (required in production)"),
) -> None:
    """Restore a dump into DATABASE_URL (stop the API and the worker first)."""
    settings = _settings()
    if refusal := confirmation_error(settings, settings.database_url, confirm):
        typer.echo(refusal, err=True)
        raise typer.Exit(2)
    try:
        path = resolve(Path(settings.backup_dir), name)
        asyncio.run(restore(settings, settings.database_url, path))
    except BackupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    checksum, postings = ledger_checksum(settings.database_url)
    typer.echo(
        f"restored {path.name} into {database_name(settings.database_url)}: {postings} postings, ledger {checksum}"
    )


if __name__ == "__main__":
    cli()
