"""ACH lifecycle throughput (PRODUCT.md §5): payments per second from the first API request until every
payment's workflow has closed, beside a baseline of no-op workflows of the same shape on the same server.

What one ACH payment costs Temporal (workflows/ach_payment.py, workflows/ach_batch.py), and what the baselines copy:
  steps       validate_ach_payment (an activity), then queue_payment, record_submitted, record_settled,
              complete_payment (local activities since the patch ach-local-db-steps): 5
  signals     `submitted` (from its window's batch workflow), `bank_event` (signalled by the settlement webhook): 2
  not copied  the return and late-return timers (1 s each here); search-attribute upserts; and the payment's share
              of its window's batch workflow (one workflow, a cutoff timer, build_file and upload_file per 1-second
              window, however many payments it holds: 2·W/N activities a payment, printed)
Two baselines run 5 no-op steps and wait for 2 signals sent by the driver, in the payment's order (2 steps, a
signal, 1 step, a signal, 2 steps), on a worker process built like the real one (same SDK, sandbox, concurrency):
one with the steps as local activities (the payment's shape now, near enough: its validation is an activity), one
with them as activities (the shape before). Each is the bare cost of orchestrating that shape; the ratio is what
Postgres, HTTP, the API, the bank and the business rules cost on top. The ACH time also holds ~3 s of deliberate
waits for the last payments (the cutoff window, the bank's 200 ms, the two 1 s windows). `--profile` says where
the time goes (bench/README.md).

`python -m bench ach_throughput [--payments N]`; `python -m bench.ach_throughput --baseline-worker` is the
baseline's worker process (started by the benchmark)."""

import argparse
import asyncio
import os
import platform
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():  # this module is re-imported in the workflow sandbox
    import httpx
    import psycopg
    import temporalio
    from sqlalchemy import text
    from temporalio.client import Client
    from temporalio.worker import Worker

    from bench import profile
    from bench.open_loop import percentile
    from bench.stack import Stack, running_stack
    from core.config import get_settings
    from core.db import Database, libpq_url
    from core.temporal import connect
    from devstack import processes
    from domain.users import ensure_superuser
    from tests.conftest import login, make_org, open_account

WARMUP = 10  # run to completion before each measurement: it also proves the workers are polling
SUPERUSER = ("root@bench.example", "bench-superuser-password")
SETTINGS = {  # the worker's and API's env (ISO 8601 durations): 1 s windows, so each payment finishes
    "ACH_WINDOW_INTERVAL": "PT1S",
    "ACH_RETURN_WINDOW": "PT1S",
    "ACH_LATE_RETURN_WINDOW": "PT1S",
    "WORKER_MAX_CONCURRENT_ACTIVITIES": "500",
    # One pooled connection per request in flight (50) plus the bank's webhooks arriving meanwhile.
    "DB_POOL_SIZE": "50",
}
BANK = {
    "settlement_delay_ms": 200,
    "return_delay_ms": 200,
    "late_return_delay_ms": 1000,
    "duplicate_deliveries": False,
    "out_of_order": False,
}


# --- the baseline: a payment's shape with nothing inside ----------------------------------------------------


@activity.defn
async def noop_step(step: str) -> None:
    pass


@workflow.defn
class BaselinePaymentWorkflow:
    def __init__(self) -> None:
        self._signals = 0

    @workflow.signal
    def submitted(self) -> None:
        self._signals += 1

    @workflow.signal
    def bank_event(self) -> None:
        self._signals += 1

    @workflow.run
    async def run(self, local: bool = False) -> None:
        self._local = local
        await self._step("validate")
        await self._step("queue")
        await workflow.wait_condition(lambda: self._signals >= 1)
        await self._step("record_submitted")
        await workflow.wait_condition(lambda: self._signals >= 2)
        await self._step("record_settled")
        await self._step("complete")

    async def _step(self, step: str) -> None:
        if self._local:  # as the payment's database steps run (workflows/ach_payment.py LOCAL_DB_STEPS)
            await workflow.execute_local_activity(noop_step, step, start_to_close_timeout=timedelta(seconds=30))
        else:
            await workflow.execute_activity(noop_step, step, start_to_close_timeout=timedelta(seconds=30))


async def serve_baseline_worker() -> None:
    """Like worker.py (same settings, concurrency, graceful shutdown), with the baseline only."""
    settings = get_settings()
    client = await connect(settings)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[BaselinePaymentWorkflow],
        activities=[noop_step],
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        graceful_shutdown_timeout=timedelta(seconds=10),
    ):
        await stop.wait()


async def run_baseline(stack: Stack, n: int, concurrency: int, local: bool) -> tuple[float, str]:
    """Seconds from the first start request until all n baseline workflows have closed, and the CPU a workflow
    cost the stack; with local, its steps are local activities."""
    kind = "local" if local else "activities"
    task_queue = f"{stack.task_queue}-baseline-{kind}"
    worker = stack.start(
        f"baseline-worker-{kind}",
        processes.python("-m", "bench.ach_throughput", "--baseline-worker"),
        {"TASK_QUEUE": task_queue},
    )
    client, query = stack.client, f"WorkflowType = 'BaselinePaymentWorkflow' AND TaskQueue = '{task_queue}'"

    async def drive(ids: list[str]) -> None:
        async def start(workflow_id: str) -> None:
            await client.start_workflow(BaselinePaymentWorkflow.run, local, id=workflow_id, task_queue=task_queue)

        await bounded(concurrency, start, ids)
        # Each signal to every workflow in turn, after all are started: most find their workflow waiting for
        # it, as a payment's do, rather than arriving with the start in one workflow task.
        for name in ("submitted", "bank_event"):
            await bounded(
                concurrency, lambda workflow_id, name=name: client.get_workflow_handle(workflow_id).signal(name), ids
            )

    try:
        await drive([f"baseline-{kind}-warmup-{i}" for i in range(WARMUP)])
        await wait_closed(client, query, WARMUP)
        meter = stack.cpu_meter()
        started = time.time()
        await drive([f"baseline-{kind}-{i}" for i in range(n)])
        await wait_closed(client, query, WARMUP + n, progress="baseline workflows")
        return (await last_close(client, query)) - started, meter.per(n, "workflow")
    finally:
        stack.stop(worker)


# --- ACH payments through the API -----------------------------------------------------------------------------


@dataclass
class Payer:
    """An org admin with a funded internal account and a linked external account."""

    headers: dict
    account_id: str
    external_account_id: str


async def seed_payer(http: httpx.AsyncClient, stack: Stack) -> Payer:
    db = Database(stack.database_url, pool_size=1)
    await ensure_superuser(db, *SUPERUSER)
    await db.close()
    su = await login(http, *SUPERUSER)
    org = await make_org(http, su, roles=("org_admin", "member"))
    # Enough for every credit of the run: credits hold their amount until submitted.
    account = await open_account(http, su, org.id, org.users["member"]["id"], deposit="10000000.00")
    admin = org.headers["org_admin"]
    link_token = (await http.post("/api/v1/external-accounts/link-token", headers=admin, json={})).json()["link_token"]
    public = (
        await http.post(
            f"{stack.sandbox_url}/linking/sandbox/public_token/create",
            json={
                "client_id": "backoffice",
                "secret": "sandbox-secret",
                "institution_id": "ins_1",
                "link_token": link_token,
            },
        )
    ).json()["public_token"]
    linked = await http.post("/api/v1/external-accounts/link", headers=admin, json={"public_token": public})
    linked.raise_for_status()
    external = next(a for a in linked.json() if a["account_type"] == "checking")
    return Payer(admin, account["id"], external["id"])


async def create_payments(
    http: httpx.AsyncClient, payer: Payer, prefix: str, count: int, concurrency: int
) -> list[float]:
    """Creates `count` payments, `concurrency` requests in flight; each request's seconds."""
    latencies: list[float] = []

    async def create(i: int) -> None:
        key = f"{prefix}-{i}"
        started = time.perf_counter()
        response = await http.post(
            "/api/v1/payments",
            headers={**payer.headers, "Idempotency-Key": key},
            json={
                # Half debits, half credits. Whole dollars: the bank's return table keys on the cents, so each settles.
                "kind": "ach_debit" if i % 2 == 0 else "ach_credit",
                "amount": f"{1 + i % 500}.00",
                "account_id": payer.account_id,
                "external_account_id": payer.external_account_id,
            },
        )
        if response.status_code != 201:
            raise RuntimeError(f"payment {key}: {response.status_code} {response.text}")
        latencies.append(time.perf_counter() - started)

    await bounded(concurrency, create, range(count))
    return latencies


async def run_ach(stack: Stack, n: int, concurrency: int, profile: bool = False) -> dict:
    client = stack.client
    payments = f"WorkflowType = 'AchPaymentWorkflow' AND TaskQueue = '{stack.task_queue}'"
    batches = f"WorkflowType = 'AchBatchWorkflow' AND TaskQueue = '{stack.task_queue}'"
    async with httpx.AsyncClient(
        base_url=stack.api_url, timeout=120, limits=httpx.Limits(max_connections=concurrency)
    ) as http:
        payer = await seed_payer(http, stack)
        (
            await http.put(
                f"{stack.sandbox_url}/odfi/_control",
                json={"webhook_url": f"{stack.api_url}/api/v1/webhooks/bank", **BANK},
            )
        ).raise_for_status()
        await create_payments(http, payer, "warmup", WARMUP, concurrency)
        await wait_closed(client, payments, WARMUP)
        windows_before = (await client.count_workflows(batches)).count
        profiler = Profiler(stack) if profile else None
        if profiler:
            await profiler.start()
        meter = stack.cpu_meter()
        started = time.time()
        creates = await create_payments(http, payer, "bench", n, concurrency)
        accepted = time.time() - started
        creating = meter.cores_busy(accepted)  # what the API competed with for the cores
        await wait_closed(client, payments, WARMUP + n, progress="ACH payments")
        elapsed = (await last_close(client, payments)) - started
        cpu = meter.per(n, "payment")
        if profiler:
            await profiler.report(n)
    windows = (await client.count_workflows(batches)).count - windows_before
    db = Database(stack.database_url, pool_size=1)
    async with db.session() as session:
        statuses = dict((await session.execute(text("SELECT status, count(*) FROM payments GROUP BY status"))).all())
    await db.close()
    if statuses != {"completed": WARMUP + n}:
        raise RuntimeError(f"not every payment completed: {statuses}")
    return {
        "elapsed": elapsed,
        "accepted": accepted,
        "windows": windows,
        "creates": creates,
        "cpu": cpu,
        "creating": creating,
        "rss": stack.peak_rss(),
    }


class Profiler:
    """--profile: CPU per component, Postgres statements and Temporal events of the measured run, per payment,
    and py-spy's view of the worker and the API (bench/profile.py)."""

    SAMPLE = 50  # histories read per workflow type

    def __init__(self, stack: Stack):
        self.stack = stack
        self.cpu = stack.cpu_meter()
        self.log = stack.pgdata / "log"

    async def _pg(self, *statements: str) -> None:
        async with await psycopg.AsyncConnection.connect(libpq_url(self.stack.database_url), autocommit=True) as conn:
            for statement in statements:  # ALTER SYSTEM: never in a transaction
                await conn.execute(statement)

    async def start(self) -> None:
        await self._pg("ALTER SYSTEM SET log_min_duration_statement = 0", "SELECT pg_reload_conf()")
        self.log_offset = self.log.stat().st_size
        self.cpu.reset()
        self.started = time.time()
        self.spies = {
            name: (out, profile.start_py_spy(self.cpu.processes[name].pid, 30, out))
            for name in ("worker", "api")
            for out in [self.stack.dir / f"py-spy-{name}.txt"]
        }

    async def report(self, n: int) -> None:
        wall = time.time() - self.started
        cpu_a_payment, busy = self.cpu.per(n, "payment"), self.cpu.cores_busy(wall)
        await self._pg("ALTER SYSTEM RESET log_min_duration_statement", "SELECT pg_reload_conf()")
        statements = await asyncio.to_thread(profile.read_statement_log, self.log, self.log_offset)
        client, queue = self.stack.client, self.stack.task_queue
        print(f"\nProfile of {n} payments ({wall:.1f} s wall, statement logging on: slower than the measured run)")
        print(f"  CPU: {cpu_a_payment}\n  cores busy: {busy}")
        print(f"  Postgres: {statements.total_calls / n:.1f} statements a payment, {statements.total_ms / n:.1f} ms")
        for sql, calls in statements.calls.most_common(25):
            print(f"    {calls / n:6.2f}/payment {statements.milliseconds[sql] / calls:6.2f} ms  {sql}")
        for workflow_type in ("AchPaymentWorkflow", "BankEventDeliveryWorkflow", "AchBatchWorkflow"):
            query = f"WorkflowType = '{workflow_type}' AND TaskQueue = '{queue}'"
            ids = [w.id async for w in client.list_workflows(query, limit=self.SAMPLE)]
            count = (await client.count_workflows(query)).count
            costs = await profile.history_costs(client, ids)
            print(profile.format_costs(f"{workflow_type} ×{count} ({count / n:.2f} a payment)", costs))
        for name, (out, spy) in self.spies.items():
            spy.wait()
            if not out.exists():
                print(f"  py-spy {name}: no samples (is ptrace allowed?)")
                continue
            own, inclusive = profile.top_frames(out)
            print(f"  py-spy {name}, self:")
            for frame, share in own:
                print(f"    {share:6.1%}  {frame[:150]}")
            print(f"  py-spy {name}, inclusive:")
            for frame, share in inclusive:
                print(f"    {share:6.1%}  {frame[:150]}")


# --- helpers ------------------------------------------------------------------------------------------------


async def bounded(concurrency: int, call: Callable[..., Awaitable], items: Iterable) -> None:
    """call(item) for every item, at most `concurrency` at a time."""
    slots = asyncio.Semaphore(concurrency)

    async def one(item) -> None:
        async with slots:
            await call(item)

    await asyncio.gather(*(one(item) for item in items))


async def wait_closed(client: Client, query: str, expected: int, progress: str | None = None) -> None:
    """Polls Temporal's visibility until `expected` workflows matching `query` have closed."""
    closed_query = f"{query} AND ExecutionStatus != 'Running'"
    deadline = time.monotonic() + 120 + expected * 0.5
    last_report = time.monotonic()
    while (closed := (await client.count_workflows(closed_query)).count) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {closed} of {expected} closed: {query}")
        if progress and time.monotonic() - last_report > 15:
            print(f"  … {closed}/{expected} {progress} closed", file=sys.stderr, flush=True)
            last_report = time.monotonic()
        await asyncio.sleep(0.5)
    failed = (
        await client.count_workflows(f"{query} AND ExecutionStatus != 'Running' AND ExecutionStatus != 'Completed'")
    ).count
    if failed:
        raise RuntimeError(f"{failed} workflows closed without completing: {query}")


async def last_close(client: Client, query: str) -> float:
    """The latest close time (epoch seconds) among the workflows matching `query`: exact, unlike the poll."""
    return max(
        [w.close_time async for w in client.list_workflows(query, page_size=1000) if w.close_time is not None]
    ).timestamp()  # every one of them is closed


def machine() -> str:
    with open("/proc/meminfo") as meminfo:
        memory_kib = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    with open("/proc/cpuinfo") as cpuinfo:
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    return (
        f"nproc {len(os.sched_getaffinity(0))} ({cpu}), {memory_kib / 2**20:.1f} GiB RAM; "
        f"Python {platform.python_version()}, temporalio {temporalio.__version__}"
    )


def load() -> str:
    """The 1-minute load average: anything else running on the machine skews the figures."""
    return f"{os.getloadavg()[0]:.1f}"


# --- the benchmark --------------------------------------------------------------------------------------------


QUICK = {"payments": 100}  # make bench-quick


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("ach_throughput")
    group.add_argument(
        "--payments",
        type=int,
        default=2000,
        metavar="N",
        help="ACH payments (and baseline workflows) to run (default 2000)",
    )
    group.add_argument("--concurrency", type=int, default=50, help="requests in flight (default 50)")
    group.add_argument(
        "--profile",
        action="store_true",
        help="profile the ACH run instead of timing it (CPU per component, Postgres statements, Temporal events, "
        "py-spy of worker and API; bench/profile.py)",
    )


async def run(args: argparse.Namespace) -> None:
    n, concurrency = args.payments, args.concurrency
    load_before = load()
    async with running_stack(SETTINGS, name="bench-ach") as stack:
        # The baseline first: the ACH run then finds the server holding the baseline's histories, not the reverse.
        if args.profile:
            await run_ach(stack, n, concurrency, profile=True)
            return
        baselines = {local: await run_baseline(stack, n, concurrency, local) for local in (True, False)}
        ach = await run_ach(stack, n, concurrency)
    ach_rate = n / ach["elapsed"]
    local_rate, remote_rate = n / baselines[True][0], n / baselines[False][0]
    creates = ach["creates"]
    print(
        f"""
ACH lifecycle throughput — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {machine()}
  N = {n} (half debits, half credits), {concurrency} requests in flight; cutoff window 1 s, return window 1 s,
  late-return window 1 s, the bank settles 200 ms after the upload; one Temporal dev server, Postgres, the
  worker, the API on {stack.api_processes} process(es), on this machine; load average {load_before} before the run
  ACH payments, created → completed  {n} in {ach["elapsed"]:7.1f} s = {ach_rate:7.1f} payments/s
      {ach["windows"]} windows/files: +{2 * ach["windows"] / n:.2f} batch activities a payment
  POST /payments meanwhile           {n} accepted in {ach["accepted"]:.1f} s = {n / ach["accepted"]:.1f} creates/s; \
p50 {1000 * percentile(creates, 50):.0f} ms, p95 {1000 * percentile(creates, 95):.0f} ms, \
p99 {1000 * percentile(creates, 99):.0f} ms
      cores busy meanwhile: {ach["creating"]}
  baseline, the payment's shape      {n} in {baselines[True][0]:7.1f} s = {local_rate:7.1f} workflows/s
      (5 no-op local activities, 2 signals each: the steps as the payment runs them)
  baseline, steps as activities      {n} in {baselines[False][0]:7.1f} s = {remote_rate:7.1f} workflows/s
      (5 no-op activities, 2 signals each: the shape before local activities)
  CPU until the last has closed (/proc, every process of the stack, this driver included):
      ACH                            {ach["cpu"]}
      the payment's shape            {baselines[True][1]}
      steps as activities            {baselines[False][1]}
  ratio ACH / the payment's shape    {ach_rate / local_rate:.3f}
  ratio ACH / steps as activities    {ach_rate / remote_rate:.3f}
  peak RSS                           {ach["rss"]}""",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ach_throughput", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline-worker", action="store_true", help=argparse.SUPPRESS)
    add_arguments(parser)
    args = parser.parse_args()
    asyncio.run(serve_baseline_worker() if args.baseline_worker else run(args))


if __name__ == "__main__":
    # Through the module's import name, so the workflow sandbox re-imports the same module, not __main__.
    from bench import ach_throughput

    ach_throughput.main()
