"""The integration tests' real stack, for benchmarks and the chaos run: an embedded Postgres, a Temporal dev server
with the project's search attributes (started by `WorkflowEnvironment.start_local`, or, with persistent_temporal, as
a child process of the Temporal CLI on a SQLite file in the stack's dir, so it can be restarted without losing
anything), the sandbox, the worker and the API.
Everything runs on free ports and in a temp dir, never `make run`'s data or ports; the dir (with every
process's log) is removed afterwards, and kept and named when the benchmark fails.

Unlike the tests, the worker and the API are child processes, as in production: the benchmark driver's own
event loop (hundreds of requests in flight, polling) must not share a CPU-bound loop with the code it measures."""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pgserver
import psutil
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench import profile
from core import search_attributes
from core.search_attributes import cli_flags
from devstack import processes
from devstack.postgres import embedded_postgres, migrate
from devstack.temporal_cli import ensure_temporal


def api_processes() -> int:
    """The API's processes (api/serve.py): BENCH_API_PROCESSES, else as many as the machine has cores, as deployed
    (bench-quick sets 1: its sizes never load one process, and each process costs the stack's start-up ~6 s of CPU)."""
    return int(os.environ.get("BENCH_API_PROCESSES") or os.cpu_count() or 1)


@dataclass
class Stack:
    dir: Path
    pgdata: Path
    env: dict[str, str]  # what every app process reads into Settings (pydantic-settings: upper-case names)
    client: Client
    sandbox_url: str
    api_url: str
    children: list[subprocess.Popen] = field(default_factory=list)
    named: dict[str, tuple[subprocess.Popen, list[str], dict[str, str]]] = field(default_factory=dict)
    api_processes: int = field(default_factory=api_processes)
    keep: bool = False  # keep the dir (logs, data) after a run that ended normally but failed its own checks

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    @property
    def task_queue(self) -> str:
        """The money queue (core/task_queues.py)."""
        return self.env["TASK_QUEUE"]

    @property
    def routine_task_queue(self) -> str:
        return self.env.get("ROUTINE_TASK_QUEUE") or f"{self.task_queue}-routine"

    @property
    def interactive_task_queue(self) -> str:
        return self.env.get("INTERACTIVE_TASK_QUEUE") or f"{self.task_queue}-interactive"

    @property
    def its_workflows(self) -> str:
        """Temporal visibility's filter for this stack's workflows, on any of its queues."""
        queues = (self.task_queue, self.routine_task_queue, self.interactive_task_queue)
        return "(" + " OR ".join(f"TaskQueue = '{queue}'" for queue in queues) + ")"

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        """A child process with the stack's settings (and `env` over them), logging to <dir>/<name>.log."""
        child = processes.start(args, {**self.env, **(env or {})}, self.dir / f"{name}.log")
        self.children.append(child)
        self.named[name] = (child, args, env or {})
        return child

    def stop(self, child: subprocess.Popen) -> None:
        processes.stop(child)
        self.children.remove(child)

    def restart(self, name: str, kill: bool = False) -> subprocess.Popen:
        """Ends the child started as `name` (SIGKILL to its whole process group with kill=True, as a crash would,
        else a graceful stop) and starts it again with the same command and settings."""
        child, args, env = self.named[name]
        if kill:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            self.children.remove(child)
        else:
            self.stop(child)
        return self.start(name, args, env)

    def peak_rss(self, names: tuple[str, ...] = ("api", "worker", "worker-interactive")) -> str:
        """The peak resident memory (VmHWM) of the named processes so far, e.g. "api 120 MiB, worker 180 MiB"."""
        return ", ".join(f"{name} {tree_peak_rss(self.named[name][0].pid)}" for name in names)

    def cpu_meter(self) -> profile.StackCpu:
        """CPU of the stack's live processes, Postgres and its own Temporal dev server from now on."""
        live = {name: child.pid for name, (child, _, _) in self.named.items() if child.poll() is None}
        port = int(self.env["TEMPORAL_ADDRESS"].rsplit(":", 1)[1])
        return profile.StackCpu(live, self.pgdata, temporal_port=port)

    def restart_postgres(self, down_for: float) -> None:
        """Stops the embedded Postgres (fast shutdown: every connection is cut), leaves it down for `down_for`
        seconds, and starts it again on the same data dir and socket."""
        server = pgserver.get_server(self.pgdata)  # the instance embedded_postgres made: it knows its binaries
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made at import time, per binary

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=server.system_user)
        time.sleep(down_for)
        server.ensure_postgres_running()


def tree_peak_rss(pid: int) -> str:
    """The peak RSS of the process `pid` and of each process below it (the API's processes), e.g.
    "346 MiB (processes: 26 + 346 + 240 MiB)": the largest, then each."""
    process = psutil.Process(pid)
    peaks = [peak_rss_mib(p.pid) for p in [process, *process.children(recursive=True)] if p.is_running()]
    shown = " + ".join(f"{p:.0f}" for p in peaks)
    return f"{max(peaks):.0f} MiB" + (f" (processes: {shown} MiB)" if len(peaks) > 1 else "")


def peak_rss_mib(pid: int) -> float:
    """VmHWM of a live process, in MiB."""
    with open(f"/proc/{pid}/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return kib / 1024


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


def temporal_command(port: int, db_file: Path) -> list[str]:
    """The Temporal CLI dev server on `port`, persisted to `db_file`, with the project's search attributes."""
    return [
        ensure_temporal(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--headless",
        "--db-filename",
        str(db_file),
        # Write-ahead log, synced at checkpoints: a committed write survives the server's own crash (not the
        # machine's), and the file keeps up with a thousand workflows in flight on a busy machine.
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        "--log-level",
        "warn",
        *cli_flags(),
    ]


async def connect_when_healthy(target: str, within: float = 60) -> Client:
    """A client of the dev server at `target`: its port opens before its frontend is healthy, and a connect in
    between fails with "Frontend is not healthy yet" (seen on a loaded CI machine), so that one is retried."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await Client.connect(target, data_converter=pydantic_data_converter)
        except RuntimeError as error:
            if "not healthy" not in str(error) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


# The settings of the benchmarks that may share a stack in bench-quick (reads, import, insights): tokens that outlive
# a run, and the token the read benchmark scrapes /metrics with.
METRICS_TOKEN = "bench-metrics-token"
SHAREABLE_SETTINGS = {"METRICS_TOKEN": METRICS_TOKEN, "ACCESS_TOKEN_TTL": "PT2H"}

# While `sharing()` runs: the stacks started by shareable calls, by their settings, and what stops them at its end.
_shared: tuple[AsyncExitStack, dict[tuple[tuple[str, str], ...], Stack]] | None = None


@asynccontextmanager
async def sharing() -> AsyncIterator[None]:
    """Within it, `running_stack(..., shareable=True)` calls with the same settings get one stack, started by the
    first and stopped when this ends: `make bench-quick` saves start-ups (~15 s each: the API's and workers' imports)
    for benchmarks that neither count nor clear each other's rows (reads, then import and insights)."""
    global _shared
    async with AsyncExitStack() as stacks:
        _shared = (stacks, {})
        try:
            yield
        finally:
            _shared = None


@asynccontextmanager
async def running_stack(
    settings: dict[str, str], name: str = "bench", persistent_temporal: bool = False, shareable: bool = False
) -> AsyncIterator[Stack]:
    """`_own_stack`, or while `sharing()` runs and the call is shareable, the shared stack of the same settings."""
    if not shareable or _shared is None:
        async with _own_stack(settings, name, persistent_temporal) as stack:
            yield stack
        return
    stacks, by_settings = _shared
    key = tuple(sorted(settings.items()))
    if key not in by_settings:
        by_settings[key] = await stacks.enter_async_context(_own_stack(settings, name, persistent_temporal))
    yield by_settings[key]


@asynccontextmanager
async def _own_stack(settings: dict[str, str], name: str, persistent_temporal: bool) -> AsyncIterator[Stack]:
    """The whole stack with `settings` (env var names, e.g. {"ACH_RETURN_WINDOW": "1"}) for the worker and API.
    persistent_temporal: the Temporal dev server is the child named "temporal", on <dir>/temporal.db
    (`stack.restart("temporal")` restarts it with its workflows)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    pgdata = tmp / "postgres"
    # Blocking set-up in threads: alembic's env may run its own event loop.
    database_url = await asyncio.to_thread(embedded_postgres, pgdata, True)
    await asyncio.to_thread(migrate, database_url)
    temporal: WorkflowEnvironment | None = None
    temporal_child: tuple[list[str], subprocess.Popen] | None = None
    if persistent_temporal:
        temporal_port = processes.free_port()
        command = temporal_command(temporal_port, tmp / "temporal.db")
        child = processes.start(command, log_path=tmp / "temporal.log")
        temporal_child = (command, child)
        await asyncio.to_thread(processes.wait_for_port, temporal_port, child, name="temporal")
        client = await connect_when_healthy(f"127.0.0.1:{temporal_port}")
    else:
        with stdio_to(tmp / "temporal.log"):
            temporal = await WorkflowEnvironment.start_local(
                dev_server_existing_path=ensure_temporal(),
                search_attributes=search_attributes.ALL,
                data_converter=pydantic_data_converter,
                dev_server_log_level="error",
            )
        client = temporal.client
    sandbox_port, api_port, smtp_port = processes.free_port(), processes.free_port(), processes.free_port()
    sandbox_url, api_url = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{api_port}"
    stack = Stack(
        dir=tmp,
        pgdata=pgdata,
        client=client,
        sandbox_url=sandbox_url,
        api_url=api_url,
        env={
            "DATABASE_URL": database_url,
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "TASK_QUEUE": f"{name}-{uuid.uuid4().hex[:8]}",
            "LINKING_BASE_URL": sandbox_url,
            "ODFI_BASE_URL": sandbox_url,
            "BUREAU_BASE_URL": sandbox_url,
            "FX_BASE_URL": sandbox_url,
            "WORKER_METRICS_ADDRESS": f"127.0.0.1:{processes.free_port()}",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),  # a sink of its own, never make run's
            # The seeding superuser deposits millions at once: no maker-checker in a benchmark's or the chaos run's set-up.
            "MAKER_CHECKER_THRESHOLD": "1000000000000.00",
            **settings,
        },
    )
    if temporal_child:  # stopped last, with the others
        stack.children.append(temporal_child[1])
        stack.named["temporal"] = (temporal_child[1], temporal_child[0], {})
    failed = True
    try:
        sandbox = stack.start("sandbox", processes.python("-m", "sandbox", "--port", str(sandbox_port)))
        mailsink = stack.start(
            "mailsink",
            processes.python("-m", "devstack.mailsink", "--port", str(smtp_port), "--dir", str(tmp / "mail")),
        )
        # As deployed (docker-compose.yml, deploy/k8s): the approvals people wait on in a worker process of their own.
        stack.start("worker", processes.python("worker.py", "--queues", "money,routine"))
        stack.start(
            "worker-interactive",
            processes.python("worker.py", "--queues", "interactive"),
            {"WORKER_METRICS_ADDRESS": f"127.0.0.1:{processes.free_port()}"},
        )
        api = stack.start(
            "api",
            processes.python(
                "-m",
                "api.serve",  # as in production (Dockerfile): idle connections kept 75 s, past the driver's pauses
                "--port",
                str(api_port),
                "--workers",
                str(stack.api_processes),
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
        if temporal is not None:
            await temporal.shutdown()
        # The embedded server of `pgdata`, already running: stop it and delete its data.
        await asyncio.to_thread(pgserver.get_server(pgdata).cleanup)
        if failed or stack.keep:
            print(f"logs of the run kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
