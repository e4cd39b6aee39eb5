"""Where a benchmark's time goes: CPU per component of the stack, Postgres statements (a pg_stat_statements of
our own: the embedded server has no contrib modules, so its log of every statement's duration is parsed instead),
and what each workflow costs Temporal, counted from the histories themselves.

Used by `python -m bench ach_throughput --profile`; bench/README.md holds what it found."""

import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

# --- CPU by component -----------------------------------------------------------------------------------------


def _tree_cpu(process: psutil.Process) -> float:
    """CPU seconds of a process, its live descendants and the children they have reaped."""
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def component_processes(
    pids: dict[str, int], pgdata: Path, temporal_port: int | None = None
) -> dict[str, psutil.Process]:
    """The stack's processes by component: the named children, the Postgres postmaster of `pgdata` (its backends
    are its children) and the Temporal dev server (a child of this process when start_local made it; the one on
    `temporal_port` when given: bench-quick keeps several stacks, each with its server, alive at once)."""
    found = {name: psutil.Process(pid) for name, pid in pids.items()}
    for p in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(p.info["cmdline"] or [])
        if "postgres" in cmdline and str(pgdata) in cmdline and "postgres" not in found:
            found["postgres"] = p
    if "temporal" not in found:
        for p in psutil.Process().children(recursive=True):
            try:
                args = p.cmdline()
            except psutil.NoSuchProcess:
                continue
            if "start-dev" in args and (temporal_port is None or str(temporal_port) in args):
                found["temporal"] = p
    found["driver"] = psutil.Process()
    return found


def cpu_snapshot(processes: dict[str, psutil.Process]) -> dict[str, float]:
    snapshot = {}
    for name, process in processes.items():
        try:
            snapshot[name] = (
                sum(process.cpu_times()[:2]) if name == "driver" else _tree_cpu(process)  # the driver: no children
            )
        except psutil.NoSuchProcess:
            snapshot[name] = 0.0
    return snapshot


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}


CORES = len(os.sched_getaffinity(0))


class StackCpu:
    """CPU seconds of every process of a stack (each one's tree, from /proc) since the last `reset`: what one piece of
    work (a payment, a decision) costs the machine, all it sets going included, and so how many a second its cores
    can keep up with."""

    def __init__(self, pids: dict[str, int], pgdata: Path, temporal_port: int | None = None):
        self.processes = component_processes(pids, pgdata, temporal_port)
        self.reset()

    def reset(self) -> None:
        self.since = cpu_snapshot(self.processes)

    def _used(self) -> dict[str, float]:
        """CPU seconds of each process since the last reset, the largest first."""
        cpu = cpu_delta(self.since, cpu_snapshot(self.processes))
        return dict(sorted(cpu.items(), key=lambda kv: -kv[1]))

    def cores_busy(self, seconds: float) -> str:
        """e.g. "api 0.61, worker 0.55, ... = 1.93 of 2 cores": each process's CPU over `seconds` of wall time."""
        busy = {name: used / seconds for name, used in self._used().items() if used}
        return ", ".join(f"{name} {value:.2f}" for name, value in busy.items()) + (
            f" = {sum(busy.values()):.2f} of {CORES} cores"
        )

    def per(self, count: int, unit: str) -> str:
        """e.g. "worker 120.3, temporal 80.1, ... = 290.2 ms a payment: 2 cores keep up with 6.9 a second"."""
        ms = {name: 1000 * seconds / count for name, seconds in self._used().items()}
        total = sum(ms.values())
        return (
            ", ".join(f"{name} {value:.1f}" for name, value in ms.items())
            + f" = {total:.1f} ms a {unit}: {CORES} cores keep up with {1000 * CORES / total:.1f} a second"
        )


# --- Postgres statements from the server's log ------------------------------------------------------------------

# With log_min_duration_statement = 0 every statement logs "duration: 0.123 ms  statement: SQL", or, by the extended
# protocol, one line for each of its parse, bind and execute steps: a call is a statement or an execute, and the
# time of all three steps counts.
_LOGGED = re.compile(r"duration: ([0-9.]+) ms\s+(statement|execute|bind|parse)[^:]*: (.*)")
_LITERALS = re.compile(r"'(?:[^']|'')*'|(?<![$\w.])\d+(?:\.\d+)?\b")


def normalize(sql: str) -> str:
    """One key per statement shape: literals become ?, whitespace collapses."""
    return " ".join(_LITERALS.sub("?", sql).split())[:160]


@dataclass
class StatementStats:
    calls: Counter = field(default_factory=Counter)
    milliseconds: defaultdict = field(default_factory=lambda: defaultdict(float))

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_ms(self) -> float:
        return sum(self.milliseconds.values())


def parse_statement_log(lines: Iterable[str]) -> StatementStats:
    stats = StatementStats()
    statement: list[str] | None = None

    def flush() -> None:
        if statement:
            duration, step, sql = float(statement[0]), statement[1], " ".join(statement[2:])
            key = normalize(sql)
            if step in ("statement", "execute"):
                stats.calls[key] += 1
            stats.milliseconds[key] += duration

    for line in lines:
        match = _LOGGED.search(line)
        if match:
            flush()
            statement = [match.group(1), match.group(2), match.group(3)]
        elif statement is not None and line[:1] in ("\t", " ") and "LOG:" not in line:
            statement.append(line.strip())  # a statement's continuation lines
        else:
            flush()
            statement = None
    flush()
    return stats


def read_statement_log(path: Path, offset: int) -> StatementStats:
    """The statements the server logged after `offset` bytes of its log."""
    with open(path, errors="replace") as log:
        log.seek(offset)
        return parse_statement_log(log)


# --- Temporal: what a workflow costs, from its history ---------------------------------------------------------

COUNTED = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: "workflow tasks",
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "activities",
    EventType.EVENT_TYPE_MARKER_RECORDED: "local activities",
    EventType.EVENT_TYPE_TIMER_STARTED: "timers",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: "signals received",
    EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: "signals sent",
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: "search-attribute upserts",
    EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED: "properties modified",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "updates",
    EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED: "child workflows",
}


async def history_costs(client: Client, workflow_ids: list[str]) -> dict[str, float]:
    """The mean of each counted event per workflow, and of all events, over `workflow_ids`."""
    totals: Counter = Counter()
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        totals["history events"] += len(history.events)
        for event in history.events:
            if event.event_type in COUNTED:
                totals[COUNTED[EventType.ValueType(event.event_type)]] += 1
    return {name: totals[name] / max(len(workflow_ids), 1) for name in ["history events", *COUNTED.values()]}


def format_costs(title: str, costs: dict[str, float]) -> str:
    shown = ", ".join(f"{value:.1f} {name}" for name, value in costs.items() if value)
    return f"  {title}: {shown}"


# --- py-spy: where a Python process spends its time -------------------------------------------------------------


def start_py_spy(pid: int, seconds: int, out: Path):
    """Samples `pid` for `seconds` without stopping it (py-spy record --nonblocking), to collapsed stacks in `out`."""
    import shutil
    import subprocess
    import sys

    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--nonblocking",
            "--subprocesses",  # the API's processes under api.serve's
            "--format",
            "raw",
            "--rate",
            "50",
            "-d",
            str(seconds),
            "-p",
            str(pid),
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def collapsed_lines(text: str) -> list[str]:
    """py-spy's collapsed stacks, one a line ending in its sample count. A frame can span lines (py-spy names some
    frames by their module's docstring, newlines and all): such pieces are joined to the line that ends them."""
    lines, pending = [], ""
    for piece in text.splitlines():
        pending = f"{pending} {piece}" if pending else piece
        if pending.rpartition(" ")[2].isdigit():
            lines.append(pending)
            pending = ""
    return lines


def top_frames(collapsed: Path, count: int = 12) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """From py-spy's collapsed stacks: the functions with the most samples on top of the stack (self) and anywhere
    in it (inclusive, once per stack), as shares of all samples."""
    own: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    for line in collapsed_lines(collapsed.read_text()):
        stack, _, samples = line.rpartition(" ")
        if not stack:
            continue
        n = int(samples)
        total += n
        frames = [re.sub(r" \(.*?/site-packages/", " (", f) for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    share = lambda c: [(frame, n / max(total, 1)) for frame, n in c.most_common(count)]  # noqa: E731
    return share(own), share(inclusive)
