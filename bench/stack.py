"""The integration tests' real stack, for benchmarks: an embedded Postgres, a Temporal dev server started by
`WorkflowEnvironment.start_local` with the project's search attributes, the sandbox, the worker and the API.
Everything runs on free ports and in a temp dir, never `make run`'s data or ports; the dir (with every
process's log) is removed afterwards, and kept and named when the benchmark fails.

Unlike the tests, the worker and the API are child processes, as in production: the benchmark driver's own
event loop (hundreds of requests in flight, polling) must not share a CPU-bound loop with the code it measures."""

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from core import search_attributes
from devstack import processes
from devstack.postgres import embedded_postgres, migrate
from devstack.temporal_cli import ensure_temporal


@dataclass
class Stack:
    dir: Path
    env: dict[str, str]  # what every app process reads into Settings (pydantic-settings: upper-case names)
    client: Client
    sandbox_url: str
    api_url: str
    children: list[subprocess.Popen] = field(default_factory=list)

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    @property
    def task_queue(self) -> str:
        return self.env["TASK_QUEUE"]

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        """A child process with the stack's settings (and `env` over them), logging to <dir>/<name>.log."""
        child = processes.start(args, {**self.env, **(env or {})}, self.dir / f"{name}.log")
        self.children.append(child)
        return child

    def stop(self, child: subprocess.Popen) -> None:
        processes.stop(child)
        self.children.remove(child)


@contextmanager
def stdio_to(path: Path) -> Iterator[None]:
    """Points this process's stdout and stderr at `path` for a while: the dev server that start_local spawns
    inherits them (it has no option for its output), and would otherwise write among the printed figures."""
    sys.stdout.flush(), sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1), os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1), os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


@asynccontextmanager
async def running_stack(settings: dict[str, str], name: str = "bench") -> AsyncIterator[Stack]:
    """The whole stack with `settings` (env var names, e.g. {"ACH_RETURN_WINDOW": "1"}) for the worker and API."""
    tmp = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    pgdata = tmp / "postgres"
    # Blocking set-up in threads: alembic's env may run its own event loop.
    database_url = await asyncio.to_thread(embedded_postgres, pgdata, True)
    await asyncio.to_thread(migrate, database_url)
    with stdio_to(tmp / "temporal.log"):
        temporal = await WorkflowEnvironment.start_local(
            dev_server_existing_path=ensure_temporal(),
            search_attributes=search_attributes.ALL,
            data_converter=pydantic_data_converter,
            dev_server_log_level="error",
        )
    sandbox_port, api_port, smtp_port = processes.free_port(), processes.free_port(), processes.free_port()
    sandbox_url, api_url = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{api_port}"
    stack = Stack(
        dir=tmp,
        client=temporal.client,
        sandbox_url=sandbox_url,
        api_url=api_url,
        env={
            "DATABASE_URL": database_url,
            "TEMPORAL_ADDRESS": temporal.client.service_client.config.target_host,
            "TASK_QUEUE": f"{name}-{uuid.uuid4().hex[:8]}",
            "LINKING_BASE_URL": sandbox_url,
            "ODFI_BASE_URL": sandbox_url,
            "BUREAU_BASE_URL": sandbox_url,
            "WORKER_METRICS_ADDRESS": f"127.0.0.1:{processes.free_port()}",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),  # a sink of its own, never make run's
            **settings,
        },
    )
    failed = True
    try:
        sandbox = stack.start("sandbox", processes.python("-m", "sandbox", "--port", str(sandbox_port)))
        mailsink = stack.start(
            "mailsink",
            processes.python("-m", "devstack.mailsink", "--port", str(smtp_port), "--dir", str(tmp / "mail")),
        )
        stack.start("worker", processes.python("worker.py"))
        api = stack.start(
            "api",
            processes.python(
                "-m",
                "uvicorn",
                "api.main:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
                "--no-access-log",
            ),
        )
        await asyncio.to_thread(processes.wait_for_port, sandbox_port, sandbox, name="sandbox")
        await asyncio.to_thread(processes.wait_for_port, smtp_port, mailsink, name="mailsink")
        await asyncio.to_thread(processes.wait_for_port, api_port, api, name="api")
        yield stack
        failed = False
    finally:
        for child in reversed(stack.children):
            processes.stop(child)
        await temporal.shutdown()
        import pgserver  # the embedded server of `pgdata`, already running: stop it and delete its data

        await asyncio.to_thread(pgserver.get_server(pgdata).cleanup)
        if failed:
            print(f"logs of the failed run kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
