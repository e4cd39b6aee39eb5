"""Finds the Temporal CLI (dev server + Web UI), building it from the Go module proxy when missing.

Order: $TEMPORAL_CLI, a `temporal` on PATH, then the cache (~/.cache/backoffice/bin, outside the clone so
every clone and CI run reuses one build)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

TEMPORAL_CLI_MODULE = "github.com/temporalio/cli/cmd/temporal@v1.5.1"


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "backoffice" / "bin"


def find_temporal() -> str | None:
    for candidate in (os.environ.get("TEMPORAL_CLI"), shutil.which("temporal"), str(cache_dir() / "temporal")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None)
    if go is None:
        raise SystemExit(
            "the Temporal CLI is missing and Go is not installed to build it; install Go 1.22+ "
            "or put a `temporal` binary on PATH"
        )
    return go


def ensure_temporal() -> str:
    found = find_temporal()
    if found:
        return found
    target = cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    print(
        f"building the Temporal CLI ({TEMPORAL_CLI_MODULE}) into {target}; this takes a few minutes once",
        file=sys.stderr,
        flush=True,
    )
    subprocess.run(
        [_go(), "install", TEMPORAL_CLI_MODULE],
        check=True,
        env={**os.environ, "GOBIN": str(target), "GOFLAGS": "-buildvcs=false"},
    )
    return str(target / "temporal")


if __name__ == "__main__":
    print(ensure_temporal())
