"""What `make run` started, and the one shutdown that stops it all.

Every process is recorded in <data dir>/run.pids (pid, start time, command line) as it starts, so that a start
after a launcher that was SIGKILLed (no shutdown at all: its children live on in their own sessions) finds them and
stops them. A lock on <data dir>/run.lock, held for the launcher's life and released by the kernel however it
ends, tells a leftover from a `make run` that is still up."""

import fcntl
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import IO

from devstack import processes, procfs
from devstack.postgres import embedded_postgres, postmaster_pid
from devstack.processes import Running

STOP_TIMEOUT = 15  # seconds from the stop signal to SIGKILL; the worker's own graceful shutdown takes up to 10


def say(text: str) -> None:
    """print(), except that a terminal gone away (SIGHUP, a closed pipe) never interrupts a shutdown."""
    try:
        print(text, flush=True)
    except (OSError, ValueError):
        pass


class Supervisor:
    def __init__(self, data: Path):
        self.data = data
        self.run_file = data / "run.pids"
        self.postgres_dir = data / "postgres"
        self.popens: dict[str, subprocess.Popen] = {}  # by name
        self.started: list[Running] = []
        self.owns_postgres = False
        self._lock: IO[str] | None = None

    def take_over(self) -> None:
        """Takes this data dir: refuses while another launcher runs on it, stops what an earlier one left."""
        self.data.mkdir(parents=True, exist_ok=True)
        lock = open(self.data / "run.lock", "w")  # noqa: SIM115 - held (locked) for the whole run
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            launcher = self._recorded().get("launcher")
            who = Running.from_record(launcher).describe() if launcher else "a launcher"
            raise SystemExit(
                f"another `make run` of {self.data} is up: {who}. Stop it first (Ctrl-C where it "
                "runs, or SIGTERM to that pid)."
            ) from None
        self._lock = lock
        leftovers = [
            target
            for target in map(Running.from_record, self._recorded().get("children", []))
            if target.is_same_process()
        ]
        postgres = self._postgres()
        if postgres and all(target.pid != postgres.pid for target in leftovers):
            leftovers.append(postgres)
        if leftovers:
            say(f"stopping what an earlier `make run` of {self.data} left running:")
            for target in leftovers:
                say(f"  {target.describe()}")
            self.started = leftovers  # ours now: a shutdown that interrupts this finishes it
            for target in processes.stop_all(leftovers, STOP_TIMEOUT):
                say(f"  {target.describe()} did not stop within {STOP_TIMEOUT}s: killed")
            self.started = []
        self._write()

    def start(self, name: str, args: list[str], env: dict | None = None, log_path: Path | None = None):
        child = processes.start(args, env, log_path)
        self.popens[name] = child
        target = Running.of(name, child.pid, args)
        if target:
            self.started.append(target)
            self._write()
        return child

    def embedded_postgres(self) -> str:
        """Starts the embedded Postgres of the data dir (pgserver starts it apart, not as our child); its URL."""
        self.owns_postgres = True  # before the start: a stop that interrupts the start still stops the server
        # Stopped by stop(), with everything else; by pgserver at exit where there is no /proc to find it by.
        url = embedded_postgres(self.postgres_dir, delete_on_exit=False, stop_on_exit=not procfs.available())
        postgres = self._postgres()
        if postgres:
            self.started.append(postgres)
            self._write()
        return url

    def ended(self) -> str | None:
        """The first child found to have ended ("<name> exited with <code>"); None while all run."""
        for name, child in self.popens.items():
            if child.poll() is not None:
                return f"{name} exited with {child.returncode}"
        return None

    def stop(self) -> None:
        """Stops every process at once (see processes.stop_all), waits until all have ended; safe to call again."""
        if self._lock is None:
            return  # the data dir is another launcher's: nothing here is ours
        targets = list(self.started)
        known = {target.pid for target in targets}
        # A child whose start a signal interrupted before it was recorded is still our child.
        for pid in procfs.children(os.getpid()):
            if pid not in known and (child := Running.of("child", pid, group=False)):
                targets.append(child)
        postgres = self._postgres() if self.owns_postgres else None
        if postgres and postgres.pid not in known:
            targets.append(postgres)
        running = [target for target in targets if target.is_running()]
        if running:
            say(f"stopping {', '.join(target.name for target in running)}")
        for target in processes.stop_all(running, STOP_TIMEOUT, children=list(self.popens.values())):
            say(f"{target.describe()} did not stop within {STOP_TIMEOUT}s: killed")
        self.started = []
        self.run_file.unlink(missing_ok=True)
        say("stopped")

    def _postgres(self) -> Running | None:
        """The embedded Postgres running on this data dir, if any (its command line names the directory)."""
        pid = postmaster_pid(self.postgres_dir)
        postgres = Running.of("postgres", pid, group=False, stop_signal=signal.SIGINT) if pid else None
        if postgres and str(self.postgres_dir) in postgres.cmdline:  # SIGINT: Postgres's fast shutdown
            return postgres
        return None

    def _recorded(self) -> dict:
        try:
            return json.loads(self.run_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _write(self) -> None:
        launcher = Running.of("launcher", os.getpid())
        record = {
            "launcher": launcher.record() if launcher else None,
            "children": [target.record() for target in self.started],
        }
        partial = self.run_file.with_suffix(".part")
        partial.write_text(json.dumps(record, indent=1))
        partial.replace(self.run_file)  # a launcher killed mid-write leaves the previous record whole
