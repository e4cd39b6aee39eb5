"""Serve the API: `python -m api.serve [--workers N]`, uvicorn with N processes on one port (WEB_CONCURRENCY, as
uvicorn reads it; 1 by default).

One process runs the API on one CPU (Python's event loop): past its CPU every request queues (bench/README.md,
the reads at 50/s). Each process has its own pool, Temporal client and cache, kept coherent across processes by
Postgres (the cache's LISTEN/NOTIFY, the rate limits' buckets, the live updates' fan-out). Their metrics are summed
by Prometheus's multiprocess mode: PROMETHEUS_MULTIPROC_DIR is set before any process imports prometheus-client,
to the given directory (emptied first: counts of an earlier run would be added to this one's) or a temporary one.
"""

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import uvicorn

from core.config import InsecureSettings, check_production_secrets, get_settings

APP = "api.main:create_app"


def metrics_directory() -> tuple[Path, bool]:
    """The multiprocess files' directory, empty, and whether it is ours to delete at the end."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not given:
        return Path(tempfile.mkdtemp(prefix="backoffice-api-metrics-")), True
    directory = Path(given)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    return directory, False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m api.serve", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "1")), metavar="N")
    parser.add_argument("--no-access-log", dest="access_log", action="store_false")
    # A client's idle connection outlives the server's keep-alive, so it is never reused as the server closes it.
    parser.add_argument("--timeout-keep-alive", type=int, default=75, metavar="SECONDS")
    parser.add_argument("--forwarded-allow-ips", default=None, help="as uvicorn's: proxies whose headers are believed")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    try:
        check_production_secrets(get_settings())  # here, once, rather than in every process that would fail
    except InsecureSettings as refused:
        raise SystemExit(f"API not started: {refused}") from None

    shared = args.workers > 1 or bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    directory, ours = metrics_directory() if shared else (None, False)
    if directory is not None:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)  # inherited by every process uvicorn starts
    try:
        uvicorn.run(
            APP,
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            access_log=args.access_log,
            timeout_keep_alive=args.timeout_keep_alive,
            forwarded_allow_ips=args.forwarded_allow_ips,
        )
    finally:
        if ours and directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
