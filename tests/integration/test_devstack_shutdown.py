"""`make run` stops everything it started, whatever signals reach it, and a start cleans up after a killed one.

Each test starts the real launcher (`python -m devstack.run`) in its own session, as make and a terminal would,
with a temp data dir and shifted ports (no demo data, to stay quick): the embedded Postgres, the Temporal dev
server, the sandbox, the mail sink, the worker and the API. Which processes belong to it is observed in /proc
(the launcher's descendants, and whatever runs on its data dir: the Postgres server), not taken from the
launcher's own records."""

import os
import random
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from devstack import processes, procfs
from devstack.processes import ROOT
from devstack.run import BASE_PORTS
from tests.polling import poll

UP_LINE = "Ctrl-C stops everything."


class Stack:
    """One `python -m devstack.run` and every process it runs, as seen in /proc."""

    def __init__(self, data_dir: Path, offset: int, outputs: Path):
        self.data_dir, self.offset, self.outputs = data_dir, offset, outputs
        self.output = outputs / "never-started.out"
        self.ports = [port + offset for port in BASE_PORTS.values()]
        self.seen: dict[int, tuple[int, str]] = {}  # pid -> (start time, command line), everything ever observed
        self.launcher: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "BACKOFFICE_DATA_DIR": str(self.data_dir),
            "BACKOFFICE_PORT_OFFSET": str(self.offset),
            "BACKOFFICE_SKIP_DEMO": "1",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("DATABASE_URL", None)  # the embedded Postgres is one of the children to stop
        return env

    def start(self) -> subprocess.Popen:
        env = self.env()
        self.output = self.outputs / f"run-{len(list(self.outputs.glob('run-*.out'))) + 1}.out"
        with open(self.output, "ab") as out:
            self.launcher = subprocess.Popen(
                [sys.executable, "-m", "devstack.run"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.launcher

    def text(self) -> str:
        """What the latest start printed."""
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    async def wait_up(self) -> None:
        async def state():
            return self.launcher.poll(), self.text()

        returncode, _ = await poll(
            state,
            lambda s: s[0] is not None or UP_LINE in s[1],
            timeout=180,
            what=lambda s: f"the stack did not come up; its output:\n{s[1]}",
        )
        assert returncode is None, f"the launcher exited with {returncode}:\n{self.text()}"
        self.observe()

    def observe(self) -> dict[int, tuple[int, str]]:
        """The launcher's process tree and the processes on its data dir (with their own children), now."""
        stats = {pid: stat for pid in procfs.pids() if (stat := procfs.stat(pid)) is not None}
        roots = {pid for pid in stats if any(str(self.data_dir) in arg for arg in procfs.cmdline(pid))}
        if self.launcher is not None and self.launcher.pid in stats:
            roots.add(self.launcher.pid)
        found, frontier = set(roots), set(roots)
        while frontier:
            frontier = {pid for pid, stat in stats.items() if stat.ppid in frontier} - found
            found |= frontier
        now = {pid: (stats[pid].started, " ".join(procfs.cmdline(pid))) for pid in found if not stats[pid].zombie}
        self.seen.update(now)
        return now

    def alive(self) -> dict[int, str]:
        """Everything observed so far that still runs (same pid and start time, not a zombie)."""
        running = {}
        for pid, (started, cmdline) in self.seen.items():
            if procfs.running(pid, started):
                running[pid] = cmdline
        return running

    @property
    def started(self) -> subprocess.Popen:
        """The launcher, once started."""
        assert self.launcher is not None, "the stack was not started"
        return self.launcher

    def busy_ports(self) -> list[int]:
        return [port for port in self.ports if processes.port_open(port)]

    def signal_group(self, sig: int) -> None:
        os.killpg(self.started.pid, sig)  # what a process manager or a terminal does to make's group

    async def wait_stopped(self) -> None:
        async def launcher_exit():
            return self.launcher.poll()

        await poll(
            launcher_exit,
            lambda code: code is not None,
            timeout=120,
            what=lambda _: f"the launcher did not exit; its output:\n{self.text()}",
        )

    def kill_leftovers(self) -> None:
        """The test's own clean-up: whatever of this stack still runs, by pid (never by name)."""
        for pid in self.alive():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.launcher is not None and self.launcher.poll() is None:
            self.launcher.kill()
            self.launcher.wait()


def _free_offset() -> int:
    """A port offset at which every port of the stack is free, below the ephemeral range (free_port()'s)."""
    for _ in range(200):
        offset = random.randrange(10_000, 23_000)
        if all(_bindable(port + offset) for port in BASE_PORTS.values()):
            return offset
    raise RuntimeError("no free port offset")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def stack(tmp_path):
    running = Stack(tmp_path / "data", _free_offset(), tmp_path)
    yield running
    running.kill_leftovers()


async def _assert_everything_stopped(stack: Stack) -> None:
    await stack.wait_stopped()
    assert stack.started.returncode == 0, stack.text()
    # Every child has been waited for by the launcher before it exits, so nothing is left to wait for here.
    assert stack.alive() == {}, f"left running after the launcher exited: {stack.alive()}\n{stack.text()}"
    assert stack.busy_ports() == [], f"ports still taken: {stack.busy_ports()}"
    expected = {"temporal", "sandbox", "mailsink", "worker.py", "api.serve", "postgres"}
    assert {name for name in expected if any(name in cmd for _, cmd in stack.seen.values())} == expected, (
        f"not every child was observed: {stack.seen}"
    )


async def _second_signal_during_shutdown(stack: Stack, first: int, second: int) -> None:
    stack.signal_group(first)

    async def output():
        return stack.text()

    await poll(output, lambda text: "stopping" in text, timeout=30, what="the launcher never began to stop")
    assert stack.started.poll() is None, "the launcher exited before the second signal could reach its shutdown"
    stack.signal_group(second)


async def test_two_sigterms_to_the_process_group_stop_every_child(stack):
    stack.start()
    await stack.wait_up()

    await _second_signal_during_shutdown(stack, signal.SIGTERM, signal.SIGTERM)

    await _assert_everything_stopped(stack)


async def test_a_start_after_a_killed_launcher_stops_its_leftovers_and_comes_up(stack):
    stack.start()
    await stack.wait_up()
    first_run = stack.observe()
    stack.launcher.kill()  # SIGKILL: no shutdown at all; its children live on in their own sessions
    stack.launcher.wait()
    leftovers = {pid: cmd for pid, cmd in stack.alive().items() if pid != stack.launcher.pid}
    assert len(leftovers) >= 6, f"the children should outlive a SIGKILLed launcher: {leftovers}"

    stack.start()
    await stack.wait_up()

    still_running = {pid: cmd for pid, cmd in stack.alive().items() if pid in first_run and pid in leftovers}
    assert still_running == {}, f"the first run's processes still run beside the second: {still_running}"
    second_run = stack.observe()

    # A third start on the same data dir while the second is up is refused, and touches nothing of it.
    # Blocking: the stack runs in processes of its own; blocking this test's event loop holds up nothing.
    third = subprocess.run(  # noqa: ASYNC221 (the stack runs in processes of its own)
        [sys.executable, "-m", "devstack.run"],
        cwd=ROOT,
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert third.returncode == 1 and f"is up: launcher (pid {stack.launcher.pid}" in third.stderr, third
    assert set(second_run) <= set(stack.alive()), "the refused start stopped some of the running stack"

    # And the second run shuts down cleanly, here on a terminal's Ctrl-C followed by a process manager's SIGTERM.
    await _second_signal_during_shutdown(stack, signal.SIGINT, signal.SIGTERM)
    await _assert_everything_stopped(stack)


async def test_a_port_held_by_another_program_is_named_with_its_pid_and_command_line(stack):
    api_port = BASE_PORTS["api"] + stack.offset
    holder = subprocess.Popen(  # noqa: ASYNC220 (a holder of its own)
        [sys.executable, "-m", "http.server", str(api_port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        processes.wait_for_port(api_port, holder, name="http.server")
        stack.start()
        await stack.wait_stopped()
        stack.observe()
    finally:
        holder.kill()
        holder.wait()

    assert stack.launcher.returncode == 1
    assert f"api ({api_port}): pid {holder.pid}: {sys.executable} -m http.server {api_port}" in stack.text(), (
        stack.text()
    )
    assert "migrating the database" not in stack.text() and stack.alive() == {}, (
        f"started although a port was taken: {stack.alive()}\n{stack.text()}"
    )
