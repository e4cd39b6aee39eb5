"""Child processes of the dev stack and the tests: start, wait until their port answers, stop them all."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

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
            raise RuntimeError(f"{name or process.args} exited with {process.returncode} before listening on {port}")
        time.sleep(0.1)
    raise TimeoutError(f"{name} did not listen on port {port} within {timeout}s")


def start(args: list[str], env: dict[str, str] | None = None, log_path: Path | None = None) -> subprocess.Popen:
    """A child in its own process group, so a stop reaches everything it started."""
    out = open(log_path, "ab") if log_path else None
    return subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out or None,
                            stderr=subprocess.STDOUT if out else None, start_new_session=True)


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass
