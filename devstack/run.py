"""`make run`: the whole back office on one machine, in the foreground. Ctrl-C or SIGTERM stops it all.

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
from devstack import processes
from devstack.postgres import embedded_postgres, migrate
from devstack.processes import ROOT
from devstack.seed import USERS, seed_database, seed_through_api
from devstack.seed_statements import seed_demo_statements
from devstack.temporal_cli import ensure_temporal

DATA = Path(os.environ.get("BACKOFFICE_DATA_DIR") or ROOT / ".data").resolve()
_OFFSET = int(os.environ.get("BACKOFFICE_PORT_OFFSET") or 0)
PORTS = {name: port + _OFFSET for name, port in {
    "temporal": 7233, "temporal_ui": 8233, "sandbox": 8100, "api": 8000, "metrics": 9464, "smtp": 1025,
    "mail_page": 8025}.items()}
SKIP_DEMO = os.environ.get("BACKOFFICE_SKIP_DEMO", "") not in ("", "0")
# ACH in demo time: a cutoff window every 30 s, a 1-minute return window, 10 minutes for a late return.
# Any of these set in the environment wins.
DEMO_ACH = {"ACH_WINDOW_INTERVAL": "PT30S", "ACH_RETURN_WINDOW": "PT60S", "ACH_LATE_RETURN_WINDOW": "PT10M"}


def _check_ports_free() -> None:
    busy = [f"{name} ({port})" for name, port in PORTS.items() if processes.port_open(port)]
    if busy:
        sys.exit(f"ports already in use: {', '.join(busy)}. Is another `make run` up?")


def main() -> None:
    _check_ports_free()
    DATA.mkdir(parents=True, exist_ok=True)
    logs = DATA / "logs"
    logs.mkdir(exist_ok=True)
    database_url = os.environ.get("DATABASE_URL") or embedded_postgres(DATA / "postgres", delete_on_exit=False)
    print("migrating the database", flush=True)
    migrate(database_url)

    env = {"DATABASE_URL": database_url, "TEMPORAL_ADDRESS": f"127.0.0.1:{PORTS['temporal']}",
           "LINKING_BASE_URL": f"http://127.0.0.1:{PORTS['sandbox']}",
           "WORKER_METRICS_ADDRESS": f"127.0.0.1:{PORTS['metrics']}", "ODFI_BASE_URL": f"http://127.0.0.1:{PORTS['sandbox']}",
           "BUREAU_BASE_URL": f"http://127.0.0.1:{PORTS['sandbox']}",
           "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(PORTS["smtp"]),
           "SANDBOX_WEBHOOK_URL": f"http://127.0.0.1:{PORTS['api']}/api/v1/webhooks/bank",
           **{name: os.environ.get(name, value) for name, value in DEMO_ACH.items()}}
    children: list = []
    try:
        run_children(children, env, logs, database_url)
    finally:
        for child in reversed(children):
            processes.stop(child)


def run_children(children: list, env: dict, logs, database_url: str) -> None:
    def shutdown(*_):
        print("\nstopping…", flush=True)
        sys.exit(0)  # the finally in main() stops every child

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)

    temporal = processes.start([
        ensure_temporal(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(PORTS["temporal"]),
        "--ui-port", str(PORTS["temporal_ui"]), "--db-filename", str(DATA / "temporal.db"),
        "--log-level", "warn", *cli_flags()], log_path=logs / "temporal.log")
    children.append(temporal)
    sandbox = processes.start(processes.python("-m", "sandbox", "--port", str(PORTS["sandbox"])), env,
                              logs / "sandbox.log")
    children.append(sandbox)
    mailsink = processes.start(processes.python("-m", "devstack.mailsink", "--port", str(PORTS["smtp"]),
                                                "--dir", str(DATA / "mail"), "--http-port", str(PORTS["mail_page"])),
                              env, logs / "mailsink.log")
    children.append(mailsink)
    processes.wait_for_port(PORTS["temporal"], temporal, name="temporal")
    processes.wait_for_port(PORTS["sandbox"], sandbox, name="sandbox")
    worker = processes.start(processes.python("worker.py"), env, logs / "worker.log")
    children.append(worker)
    api = processes.start(processes.python("-m", "uvicorn", "api.main:create_app", "--factory", "--host", "127.0.0.1",
                                           "--port", str(PORTS["api"]), "--no-access-log"), env, logs / "api.log")
    children.append(api)
    processes.wait_for_port(PORTS["api"], api, name="api")
    demo_lines = [] if SKIP_DEMO else seed_demo(database_url)

    print(f"""
Back office is up (logs in {logs}):
  API            http://127.0.0.1:{PORTS['api']}   (docs: /docs, readiness: /readyz)
  Temporal UI    http://127.0.0.1:{PORTS['temporal_ui']}   (frontend 127.0.0.1:{PORTS['temporal']})
  Sandbox        http://127.0.0.1:{PORTS['sandbox']}   (account-linking provider, ODFI bank)
  Mail sink      SMTP 127.0.0.1:{PORTS['smtp']}, messages as .eml files in {DATA / 'mail'}
  Mail page      http://127.0.0.1:{PORTS['mail_page']}/   (the sink's messages, newest first)
  Schedules      http://127.0.0.1:{PORTS['temporal_ui']}/namespaces/default/schedules   (python -m core.schedules list)
  Worker metrics http://127.0.0.1:{PORTS['metrics']}/metrics
  Database       {database_url}""", flush=True)
    for line in demo_lines:
        print(line)
    print("Ctrl-C stops everything.", flush=True)

    parent = os.getppid()
    while True:
        if os.getppid() != parent:  # `make` was killed (SIGTERM to make is not passed on): stop too
            shutdown()
        for child in children:
            if child.poll() is not None:
                print(f"{child.args[:3]} exited with {child.returncode}; see {logs}", flush=True)
                shutdown()
        time.sleep(1)


def seed_demo(database_url: str) -> list[str]:
    """Loads the demo data; the lines that tell where to find it."""
    api = f"http://127.0.0.1:{PORTS['api']}"
    asyncio.run(seed_database(Database(database_url, pool_size=2)))
    demo = asyncio.run(seed_through_api(api, f"http://127.0.0.1:{PORTS['sandbox']}"))
    statement_pdf = asyncio.run(seed_demo_statements(database_url, api))
    return [f"Demo statement {api}{statement_pdf}   (as alice, in a minute)",
            "Demo workflows: " + ", ".join(f"{p['kind']} {p['amount']} {p['workflow_id']} ({p['status']})" for p in demo),
            "Demo users (email / password):",
            *(f"  {role:17} {email:32} {password}" for email, _, role, password in USERS)]


if __name__ == "__main__":
    main()
