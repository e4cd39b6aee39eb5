"""The dev stack's process handling on real processes: stopping many at once, naming a port's holder, and never
taking a reused pid for a recorded process."""

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from devstack import processes, procfs
from devstack.processes import Running

# Records when SIGTERM arrived, then ignores it (or, with "polite", exits on it).
CHILD = """
import signal, sys, time
from pathlib import Path
out = Path(sys.argv[1])
def on_term(*_):
    out.with_suffix(".term").write_text(repr(time.time()))
    if sys.argv[2] == "polite":
        sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
out.with_suffix(".ready").write_text("")
while True:
    time.sleep(0.05)
"""


def _wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_stop_all_sends_every_stop_signal_before_it_kills_any(tmp_path):
    kinds = {"stubborn1": "stubborn", "stubborn2": "stubborn", "polite": "polite"}
    children = {
        name: processes.start(processes.python("-c", CHILD, str(tmp_path / name), kind)) for name, kind in kinds.items()
    }
    for name in children:
        _wait_for(tmp_path / f"{name}.ready")
    targets = [Running.of(name, child.pid, child.args) for name, child in children.items()]
    timeout = 4

    killed = processes.stop_all(targets, timeout, children=list(children.values()))

    assert sorted(target.name for target in killed) == ["stubborn1", "stubborn2"]
    assert {name: child.returncode for name, child in children.items()} == {
        "stubborn1": -signal.SIGKILL,
        "stubborn2": -signal.SIGKILL,
        "polite": 0,
    }
    # One after the other, the second would have had its SIGTERM only once the first was killed, `timeout` later.
    termed = [float((tmp_path / f"{name}.term").read_text()) for name in ("stubborn1", "stubborn2")]
    assert abs(termed[0] - termed[1]) < timeout / 2, termed


def test_stop_stops_a_child_and_its_process_group(tmp_path):
    # A shell that starts a grandchild in the same group and waits: a stop must end both.
    child = processes.start(["sh", "-c", f"sleep 300 & echo $! > {tmp_path / 'grandchild'}; wait"])
    _wait_for(tmp_path / "grandchild")
    grandchild = int((tmp_path / "grandchild").read_text())
    assert procfs.stat(grandchild).pgrp == child.pid

    processes.stop(child, timeout=10)

    assert child.returncode is not None
    grandchild_now = procfs.stat(grandchild)
    assert grandchild_now is None or grandchild_now.zombie


def test_port_holders_name_the_listening_process_and_its_command_line():
    port = processes.free_port()
    holder = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        processes.wait_for_port(port, holder, name="http.server")
        assert procfs.port_holders(port) == [
            f"pid {holder.pid}: {sys.executable} -m http.server {port} --bind 127.0.0.1"
        ]
    finally:
        holder.kill()
        holder.wait()
    assert procfs.port_holders(port) == []


def test_a_recorded_process_is_matched_by_start_time_and_command_line_not_by_pid_alone():
    me = Running.of("me", os.getpid())
    assert me.is_same_process()
    assert not dataclasses.replace(me, started=me.started - 1).is_same_process()  # the pid, reused by another
    assert not dataclasses.replace(me, cmdline=["something", "else"]).is_same_process()
    assert Running.from_record(me.record()) == me
