"""Child processes of the dev stack and the tests: start, wait until their port answers, stop them all."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

from devstack import procfs

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 60, name: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{name or process.args!s} exited with {process.returncode} before listening on {port}")
        time.sleep(0.1)
    raise TimeoutError(f"{name} did not listen on port {port} within {timeout}s")


def start(args: list[str], env: dict[str, str] | None = None, log_path: Path | None = None) -> subprocess.Popen:
    """A child in its own process group, so a stop reaches everything it started."""
    out = open(log_path, "ab") if log_path else None  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=out or None,
        stderr=subprocess.STDOUT if out else None,
        start_new_session=True,
    )


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


@dataclass(frozen=True)
class Running:
    """A process to stop, named so that it is never mistaken for another that reuses its pid later.

    `group`: signals go to its whole process group (a child started in its own session by start()), else to the
    process alone (Postgres's postmaster, whose backends end with it)."""

    name: str
    pid: int
    started: int | None  # start time from /proc; None where there is no /proc
    cmdline: list[str] = field(default_factory=list)
    group: bool = True
    stop_signal: int = signal.SIGTERM

    @classmethod
    def of(cls, name: str, pid: int, cmdline: list[str] | None = None, **options) -> "Running | None":
        """The process `pid` as it is now (its command line as given, else as /proc shows it); None when it has
        ended. A child just started is named by the arguments it was started with: /proc may show it empty then."""
        if not procfs.available():
            return cls(name, pid, None, list(cmdline or []), **options)
        now = procfs.stat(pid)
        if now is None or now.zombie:
            return None
        return cls(name, pid, now.started, list(cmdline) if cmdline else procfs.cmdline(pid), **options)

    @classmethod
    def from_record(cls, record: dict) -> "Running":
        return cls(**record)

    def record(self) -> dict:
        return asdict(self)

    def is_same_process(self) -> bool:
        """It still runs, and is the process recorded (same start time and command line), not a reused pid."""
        if self.started is None:
            return False  # without /proc, a pid from an earlier run cannot be told from a reused one
        return procfs.running(self.pid, self.started) and procfs.cmdline(self.pid) == self.cmdline

    def is_running(self) -> bool:
        if self.started is None:
            return _signal(self.pid, 0, group=self.group)
        if procfs.running(self.pid, self.started):
            return True
        # The leader has ended; while its group exists, no new process can have the same id.
        return self.group and bool(procfs.group_members(self.pid))

    def send(self, sig: int) -> None:
        _signal(self.pid, sig, group=self.group)

    def describe(self) -> str:
        return f"{self.name} (pid {self.pid}: {' '.join(self.cmdline)[:160]})"


def _signal(pid: int, sig: int, group: bool) -> bool:
    try:
        (os.killpg if group else os.kill)(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):  # ended; or not ours to signal (then nothing else will work)
        return False


def stop_all(targets: list[Running], timeout: float = 15, children: Sequence[subprocess.Popen] = ()) -> list[Running]:
    """Stops every target at once: its stop signal, then SIGKILL to what still runs after `timeout` seconds, and
    waits until all have ended (a zombie has), reaping `children`, our own Popens among the targets.
    Returns the targets that needed SIGKILL."""
    remaining = [target for target in targets if target.is_running()]
    for target in remaining:
        target.send(target.stop_signal)
    deadline = time.monotonic() + timeout
    while remaining and time.monotonic() < deadline:
        time.sleep(0.1)
        for child in children:
            child.poll()  # reaps an ended child, so it no longer counts as running (a zombie)
        remaining = [target for target in remaining if target.is_running()]
    for target in remaining:
        target.send(signal.SIGKILL)
    deadline = time.monotonic() + timeout  # SIGKILL cannot be caught, but a process busy in the kernel ends late
    while any(target.is_running() for target in remaining) and time.monotonic() < deadline:
        time.sleep(0.05)
    for child in children:
        child.poll()
    return remaining


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    """Stops one child started by start(): SIGTERM to its process group, SIGKILL after `timeout`."""
    target = Running.of(str(process.args), process.pid, cast(list[str], process.args))  # as start() gave them
    stop_all([target] if target else [], timeout, children=[process])
