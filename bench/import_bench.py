"""Transaction imports at bulk speed (issue 15 item 2): a CSV of N generated lines imported end to end (the
multipart POST to the API, stored sealed, then the `import-<id>` workflow's chunks parsed in Python and loaded with
COPY + INSERT ... ON CONFLICT, the rules applied, the member told), timed from the POST until the import's row says
completed, beside the baseline of `psql \\copy` of the same file into a plain table of the CSV's columns (no
indexes, no checks: the floor of loading those bytes into this Postgres). Rows a minute for both, their ratio, and
the worker's peak RSS (VmHWM) after each of two file sizes: memory flat in the file's size means the larger file's
peak is about the smaller's. The target: 1,000,000 rows a minute or more end to end on this machine.

`python -m bench import_bench [--import-rows N]` (the small file is N/4; `--quick`: 40,000)."""

import argparse
import asyncio
import subprocess
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pgserver

from bench.ach_throughput import SUPERUSER, load, machine
from bench.import_profile import profile_chunks
from bench.stack import SHAREABLE_SETTINGS, Stack, peak_rss_mib, running_stack, tree_peak_rss
from core.db import Database, libpq_url
from domain.users import ensure_superuser
from tests.conftest import login, make_org

QUICK = {"import_rows": 40_000}  # bench-quick: the figure's shape in about a minute
TARGET_PER_MINUTE = 1_000_000
BASELINE_TABLE = """
DROP TABLE IF EXISTS bench_copy;
CREATE TABLE bench_copy (posted_on date, amount numeric(20, 2), description text, merchant text, currency text)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("import_bench")
    group.add_argument("--import-rows", type=int, default=1_000_000, help="lines of the large file (default 1,000,000)")
    group.add_argument(
        "--import-profile",
        type=int,
        default=0,
        metavar="CHUNKS",
        help="instead: replay CHUNKS chunks of load_chunk's statements, each step timed (bench/import_profile.py)",
    )


def line(i: int) -> str:
    """The i-th generated line: distinct for every i."""
    day = date(2025, 1, 1) + timedelta(days=i % 365)
    cents = (i * 7919) % 250_000 + 1
    sign = "" if i % 10 == 0 else "-"
    return f"{day},{sign}{cents // 100}.{cents % 100:02d},Card purchase {i % 5003},Merchant {i % 811},USD\n"


def write_file(path: Path, rows: int, first_index: int) -> int:
    """N distinct lines (from the `first_index`th on: each file its own), written as they are made (the generator
    holds none of them); the file's size."""
    with open(path, "w") as out:
        out.write("date,amount,description,merchant,currency\n")
        for i in range(first_index, first_index + rows):
            out.write(line(i))
    return path.stat().st_size


def psql_binary() -> str:
    return str(Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql")


def psql_copy(database_url: str, path: Path) -> float:
    """Seconds `psql \\copy` takes to load the file into the baseline table."""
    url = libpq_url(database_url)
    subprocess.run([psql_binary(), url, "-q", "-c", BASELINE_TABLE], check=True)
    began = time.monotonic()
    subprocess.run(
        [psql_binary(), url, "-q", "-c", f"\\copy bench_copy FROM '{path}' WITH (FORMAT csv, HEADER)"], check=True
    )
    return time.monotonic() - began


async def import_file(http: httpx.AsyncClient, headers: dict, account_id: str, path: Path) -> tuple[float, float, dict]:
    """Seconds from the POST until the import's row says it ended, of which until the POST's answer, and that row."""
    began = time.monotonic()
    # httpx streams an open file: the driver never holds it whole either
    with open(path, "rb") as upload:  # noqa: ASYNC230
        response = await http.post(
            "/api/v1/transaction-imports",
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            files={"file": (path.name, upload, "text/csv")},
            data={"external_account_id": account_id},
        )
    if response.status_code != 202:
        raise RuntimeError(f"POST /transaction-imports: {response.status_code} {response.text}")
    answered = time.monotonic() - began
    import_id = response.json()["id"]
    while True:
        row = (await http.get(f"/api/v1/transaction-imports/{import_id}", headers=headers)).json()
        if row["status"] != "running":
            return time.monotonic() - began, answered, row
        await asyncio.sleep(0.25)


async def member_with_account(http: httpx.AsyncClient, stack: Stack) -> tuple[dict, str]:
    db = Database(stack.database_url, pool_size=1)
    try:
        await ensure_superuser(db, *SUPERUSER)
    finally:
        await db.close()
    su = await login(http, *SUPERUSER)
    org = await make_org(http, su)
    created = await http.post(
        "/api/v1/external-accounts",
        headers=org.headers["org_admin"],
        json={
            "holder_name": "Everyday",
            "routing_number": "021000021",
            "account_number": "000123456789",
            "account_type": "checking",
            "owner_id": org.users["member"]["id"],
        },
    )
    if created.status_code != 201:
        raise RuntimeError(f"POST /external-accounts: {created.status_code} {created.text}")
    return org.headers["member"], created.json()["id"]


async def run(args: argparse.Namespace) -> None:
    large = args.import_rows
    sizes = [max(large // 4, 1), large]
    load_before = load()
    lines = []
    async with (
        running_stack(SHAREABLE_SETTINGS, name="bench-import", shareable=True) as stack,
        httpx.AsyncClient(base_url=stack.api_url, timeout=600) as http,
    ):
        member, account_id = await member_with_account(http, stack)
        if args.import_profile:
            figures = await profile_chunks(http, stack, member, account_id, args.import_profile, 50_000, line)
            print(f"\nTransaction import chunks — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {machine()}\n{figures}")
            return
        for rows in sizes:
            path = stack.dir / f"transactions-{rows}.csv"
            size = await asyncio.to_thread(write_file, path, rows, sum(sizes[: sizes.index(rows)]))
            seconds, upload, row = await import_file(http, member, account_id, path)
            worker_rss = peak_rss_mib(stack.named["worker"][0].pid)
            api_rss = tree_peak_rss(stack.named["api"][0].pid)
            baseline = await asyncio.to_thread(psql_copy, stack.database_url, path)
            if row["status"] != "completed" or row["rows_loaded"] != rows:
                raise RuntimeError(f"the import of {rows} lines ended {row}")
            path.unlink()
            ours, floor = rows / seconds * 60, rows / baseline * 60
            lines.append(
                f"  {rows:>10,} lines ({size / 2**20:,.0f} MiB): import {seconds:6.1f} s = {ours:>11,.0f} rows/min"
                f" (the POST {upload:4.1f} s)"
                f" | psql \\copy {baseline:5.1f} s = {floor:>11,.0f} rows/min | ratio {ours / floor:.2f}"
                f" | peak RSS worker {worker_rss:.0f} MiB, API {api_rss}"
            )
    best = rows / seconds * 60
    print(
        f"""
Transaction import — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {machine()}
  end to end: multipart POST (streamed, sealed in 4 MiB segments), the import-<id> workflow's chunks (50,000 lines:
  Python checks, COPY into staging, INSERT ... ON CONFLICT into imported_transactions with its 5 indexes), the rules,
  the summary notification; beside psql \\copy of the same file into a plain table (no indexes, no checks).
  Peak RSS is each process's VmHWM so far: after the small file, then after the large one. Load average
  {load_before} before the run.
"""
        + "\n".join(lines)
        + f"""
  target {TARGET_PER_MINUTE:,} rows/min end to end: {"met" if best >= TARGET_PER_MINUTE else "NOT met"} \
({best:,.0f} at {large:,} lines)""",
        flush=True,
    )
