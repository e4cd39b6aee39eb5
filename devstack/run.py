"""`make run`: the whole back office on one machine, in the foreground. Ctrl-C, SIGTERM or SIGHUP stops it all,
every process at once (SIGKILL to any still running after 15 s); more signals during the shutdown do not cut it
short. A start stops what an earlier, killed launcher of the same data dir left running (devstack/supervisor.py).

Data lives under .data/ (Postgres, Temporal's SQLite file, logs); delete that folder to start afresh.
BACKOFFICE_DATA_DIR moves it, BACKOFFICE_PORT_OFFSET shifts every port, BACKOFFICE_SKIP_DEMO=1 loads no demo
data (a second stack beside the first, as the shutdown tests start)."""

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from core.db import Database
from core.search_attributes import cli_flags
from devstack import processes, procfs
from devstack.postgres import migrate
from devstack.processes import ROOT
from devstack.seed import DEMO_API_KEY, DEMO_API_KEY_SCOPES, MFA_USER, USERS, seed_database, seed_through_api
from devstack.seed_statements import seed_demo_statements
from devstack.supervisor import Supervisor, say
from devstack.temporal_cli import ensure_temporal

DATA = Path(os.environ.get("BACKOFFICE_DATA_DIR") or ROOT / ".data").resolve()
_OFFSET = int(os.environ.get("BACKOFFICE_PORT_OFFSET") or 0)
BASE_PORTS = {
    "temporal": 7233,
    "temporal_ui": 8233,
    "sandbox": 8100,
    "api": 8000,
    "metrics": 9464,
    "smtp": 1025,
    "mail_page": 8025,
}
PORTS = {name: port + _OFFSET for name, port in BASE_PORTS.items()}
SKIP_DEMO = os.environ.get("BACKOFFICE_SKIP_DEMO", "") not in ("", "0")
# ACH in demo time: a cutoff window every 30 s, a 1-minute return window, 10 minutes for a late return.
# Any of these set in the environment wins.
DEMO_ACH = {"ACH_WINDOW_INTERVAL": "PT30S", "ACH_RETURN_WINDOW": "PT60S", "ACH_LATE_RETURN_WINDOW": "PT10M"}


class Stop(KeyboardInterrupt):
    """A stop signal arrived: raised once, out of whatever the launcher was doing. A KeyboardInterrupt, so that
    no `except Exception` on the way swallows it, and asyncio passes it on at once even from inside a task."""


_stopping = False  # plain globals: setting one runs no Python code, so no signal handler slips in before it
_stop_signal = ""


def _on_signal(signum: int, _frame) -> None:
    global _stopping, _stop_signal
    if _stopping:  # a second Ctrl-C, make passing SIGTERM on, a process manager insisting: the shutdown goes on
        # os.write, not print: print() from a handler that interrupted another print() fails (stdout is not reentrant)
        try:
            os.write(sys.stdout.fileno(), f"{signal.Signals(signum).name}: already stopping\n".encode())
        except (OSError, ValueError):
            pass
        return
    _stopping = True
    _stop_signal = signal.Signals(signum).name
    raise Stop(_stop_signal)


def _stop_if_requested() -> None:
    """Raises Stop again in case library code caught the first one and went on."""
    if _stopping:
        raise Stop(_stop_signal)


def main() -> None:
    global _stopping
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    supervisor = Supervisor(DATA)
    code = 0
    try:
        supervisor.take_over()
        _check_ports_free()
        code = run(supervisor)
    except Stop as stop:
        say(f"\n{stop}: stopping…")
    finally:
        _stopping = True  # from here on a signal never interrupts the shutdown
        supervisor.stop()
    sys.exit(code)


def _check_ports_free() -> None:
    busy = [(name, port) for name, port in PORTS.items() if processes.port_open(port)]
    if busy:
        lines = [
            f"  {name} ({port}): {'; '.join(procfs.port_holders(port)) or 'held by a process not visible here'}"
            for name, port in busy
        ]
        sys.exit("ports already in use:\n" + "\n".join(lines))


def run(supervisor: Supervisor) -> int:
    """Starts everything, then watches it; the exit code once something ends on its own."""
    logs = DATA / "logs"
    logs.mkdir(exist_ok=True)
    database_url = os.environ.get("DATABASE_URL") or supervisor.embedded_postgres()
    print("migrating the database", flush=True)
    migrate(database_url)

    sandbox_url = f"http://127.0.0.1:{PORTS['sandbox']}"
    env = {
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": f"127.0.0.1:{PORTS['temporal']}",
        "LINKING_BASE_URL": sandbox_url,
        "ODFI_BASE_URL": sandbox_url,
        "BUREAU_BASE_URL": sandbox_url,
        "IDENTITY_BASE_URL": sandbox_url,
        "WORKER_METRICS_ADDRESS": f"127.0.0.1:{PORTS['metrics']}",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(PORTS["smtp"]),
        "SANDBOX_WEBHOOK_URL": f"http://127.0.0.1:{PORTS['api']}/api/v1/webhooks/bank",
        "GATEWAY_BASE_URL": sandbox_url,
        "GATEWAY_CALLBACK_URL": f"http://127.0.0.1:{PORTS['api']}/api/v1/gateway-payments",
        "SANDBOX_GATEWAY_WEBHOOK_URL": f"http://127.0.0.1:{PORTS['api']}/api/v1/webhooks/gateway",
        **{name: os.environ.get(name, value) for name, value in DEMO_ACH.items()},
    }
    os.environ.update(env)  # the demo seeding below is one more client of this stack (it reads get_settings())
    temporal = supervisor.start(
        "temporal",
        [
            ensure_temporal(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(PORTS["temporal"]),
            "--ui-port",
            str(PORTS["temporal_ui"]),
            "--db-filename",
            str(DATA / "temporal.db"),
            "--log-level",
            "warn",
            *cli_flags(),
        ],
        log_path=logs / "temporal.log",
    )
    sandbox = supervisor.start(
        "sandbox", processes.python("-m", "sandbox", "--port", str(PORTS["sandbox"])), env, logs / "sandbox.log"
    )
    supervisor.start(
        "mailsink",
        processes.python(
            "-m",
            "devstack.mailsink",
            "--port",
            str(PORTS["smtp"]),
            "--dir",
            str(DATA / "mail"),
            "--http-port",
            str(PORTS["mail_page"]),
        ),
        env,
        logs / "mailsink.log",
    )
    processes.wait_for_port(PORTS["temporal"], temporal, name="temporal")
    processes.wait_for_port(PORTS["sandbox"], sandbox, name="sandbox")
    supervisor.start("worker", processes.python("worker.py"), env, logs / "worker.log")
    api = supervisor.start(
        "api",
        processes.python(
            "-m",
            "api.serve",  # WEB_CONCURRENCY processes (1 unless set)
            "--port",
            str(PORTS["api"]),
            "--no-access-log",
        ),
        env,
        logs / "api.log",
    )
    processes.wait_for_port(PORTS["api"], api, name="api")
    demo_lines = [] if SKIP_DEMO else seed_demo(database_url)
    _stop_if_requested()

    print(
        f"""
Back office is up (logs in {logs}):
  API            http://127.0.0.1:{PORTS["api"]}   (docs: /docs, readiness: /readyz)
  Temporal UI    http://127.0.0.1:{PORTS["temporal_ui"]}   (frontend 127.0.0.1:{PORTS["temporal"]})
  Sandbox        http://127.0.0.1:{PORTS["sandbox"]}   (account-linking provider, ODFI bank)
  Mail sink      SMTP 127.0.0.1:{PORTS["smtp"]}, messages as .eml files in {DATA / "mail"}
  Mail page      http://127.0.0.1:{PORTS["mail_page"]}/   (the sink's messages, newest first)
  Schedules      http://127.0.0.1:{PORTS["temporal_ui"]}/namespaces/default/schedules   (python -m core.schedules list)
  Worker metrics http://127.0.0.1:{PORTS["metrics"]}/metrics
  Database       {database_url}""",
        flush=True,
    )
    for line in demo_lines:
        print(line)
    print("Ctrl-C stops everything.", flush=True)

    parent = os.getppid()
    while True:
        _stop_if_requested()
        if os.getppid() != parent:  # `make` was SIGKILLed: nobody would stop us otherwise
            say("the parent process is gone: stopping…")
            return 0
        ended = supervisor.ended()
        if ended:
            say(f"{ended}; see {logs}. Stopping…")
            return 1
        time.sleep(1)


def seed_demo(database_url: str) -> list[str]:
    """Loads the demo data; the lines that tell where to find it."""
    api = f"http://127.0.0.1:{PORTS['api']}"
    asyncio.run(seed_database(Database(database_url, pool_size=2)))
    demo = asyncio.run(seed_through_api(api, f"http://127.0.0.1:{PORTS['sandbox']}"))
    statement_pdf = asyncio.run(seed_demo_statements(database_url, api))
    return [
        f"Demo statement {api}{statement_pdf}   (as alice, in a minute)",
        "Demo workflows: " + ", ".join(f"{p['kind']} {p['amount']} {p['workflow_id']} ({p['status']})" for p in demo),
        "Demo KYC: uma unverified, petra pending review (the operator's /approvals/inbox), vic verified, rita "
        "rejected (GET /api/v1/members as the org admin)",
        "Demo users (email / password):",
        *(f"  {role:17} {email:32} {password}" for email, _, role, password in USERS),
        f"  MFA is on for {MFA_USER[0]}: its TOTP secret {MFA_USER[1]} (log in, then POST /auth/mfa/verify)",
        f"Demo API key (acts as orgadmin@riverside.example; {', '.join(DEMO_API_KEY_SCOPES)}):",
        f"  curl -H 'X-API-Key: {DEMO_API_KEY}' {api}/api/v1/accounts",
    ]


if __name__ == "__main__":
    main()
