"""The replay corpus: workflow histories captured from the integration suite, committed, and replayed by
tests/unit/test_replay.py against today's workflow code, so a change that would break a running workflow fails CI.

Refreshing it (after a deliberate, patched change; see the README, "Changing a workflow safely"):

    make replay-histories

runs the integration suite with `--capture-histories DIR` (tests/conftest.py dumps every run of every workflow
the session's Temporal server holds when the suite ends), then `select` adds, per workflow type, a small set of
histories that together show every *feature* seen in the capture that the committed corpus does not show yet
(the committed histories stay: they stand for runs that may still be open): each command and message kind (activity
types, timers, children, signals, updates, continue-as-new, patches), each short sequence of them (bigrams, so a
return followed by a re-presentment is a path of its own), a few discriminating input values (an approval's
`notify`, a loan's `status`, a return's `settled`/`completed`), and crash marks (a workflow task that timed out
or failed, an activity that needed another attempt). Smallest histories first among equals.
"""

import base64
import gzip
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHistory

HISTORIES = Path(__file__).parent / "histories"
# Input fields whose values tell paths apart (kept short: each distinct value is a feature to cover).
DISCRIMINATORS = ("notify", "status", "decision", "mode", "settled", "completed", "represent", "reference_kind")
COMMAND_EVENTS = {
    "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED": "activity",
    "EVENT_TYPE_TIMER_STARTED": "timer",
    "EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED": "child",
    "EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED": "signal_out",
    "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED": "signal",
    "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED": "update",
    "EVENT_TYPE_MARKER_RECORDED": "marker",
    "EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW": "continued_as_new",
    "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED": "completed",
    "EVENT_TYPE_WORKFLOW_EXECUTION_FAILED": "failed",
    "EVENT_TYPE_TIMER_FIRED": "timer_fired",
    "EVENT_TYPE_ACTIVITY_TASK_FAILED": "activity_failed",
    "EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED": "child_completed",
    "EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED": "signal_out_done",
    "EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED": "signal_out_failed",
    "EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED": "cancel_requested",
    "EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED": "terminated",
}
# The SDK's markers: (token kind, the details field whose JSON names it).
MARKERS = {"core_local_activity": ("local_activity", "data"), "core_patch": ("patch", "patch-data")}
CRASH_EVENTS = {
    "EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT": "crash:workflow_task_timed_out",
    "EVENT_TYPE_WORKFLOW_TASK_FAILED": "crash:workflow_task_failed",
    "EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT": "crash:activity_timed_out",
}


@dataclass
class Captured:
    """One run's history, as stored: `<type>/<name>.json.gz` holding the workflow id, its type and the events."""

    workflow_id: str
    workflow_type: str
    history: dict
    features: frozenset[str] = field(default=frozenset())

    @property
    def events(self) -> list[dict]:
        return self.history.get("events", [])

    @property
    def run_id(self) -> str:
        return self.events[0]["workflowExecutionStartedEventAttributes"].get("originalExecutionRunId", "")

    def to_history(self) -> WorkflowHistory:
        return WorkflowHistory.from_json(self.workflow_id, self.history)

    def file_name(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.workflow_id}-{self.run_id[:8]}")[:150] + ".json.gz"

    def save(self, folder: Path) -> Path:
        path = folder / self.workflow_type / self.file_name()
        path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps(
            {"workflow_id": self.workflow_id, "workflow_type": self.workflow_type, "history": self.history},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        path.write_bytes(gzip.compress(body, mtime=0))
        return path


def load(folder: Path = HISTORIES) -> list[tuple[Path, Captured]]:
    found = []
    for path in sorted(folder.glob("*/*.json.gz")):
        raw = json.loads(gzip.decompress(path.read_bytes()))
        captured = Captured(raw["workflow_id"], raw["workflow_type"], raw["history"])
        captured.features = frozenset(features(captured))
        found.append((path, captured))
    return found


async def capture(client: Client, folder: Path) -> int:
    """Every run of every workflow on the server, saved under `folder`; the count."""
    count = 0
    async for execution in client.list_workflows():
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        history = await handle.fetch_history()
        Captured(execution.id, execution.workflow_type, history.to_json_dict()).save(folder)
        count += 1
    return count


# --- features ---------------------------------------------------------------------------------------------------


def _json_payloads(payloads: dict | None) -> Iterator[Any]:
    """The JSON values of a payload list (a single payload, as markers' details hold, counts as a list of one)."""
    items = (payloads or {}).get("payloads", [payloads] if payloads and "data" in payloads else [])
    for payload in items:
        try:
            yield json.loads(base64.b64decode(payload.get("data", "")))
        except ValueError:
            return


def _payload_values(payloads: dict | None) -> Iterator[tuple[str, str]]:
    """(field, value) of the discriminating fields in a JSON payload list, at any depth of the first payload."""
    for value in list(_json_payloads(payloads))[:1]:
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                for key, inner in item.items():
                    if key in DISCRIMINATORS and isinstance(inner, (str, bool, int)) and inner is not None:
                        yield key, str(inner)
                    elif isinstance(inner, (dict, list)):
                        stack.append(inner)
            elif isinstance(item, list):
                stack.extend(item)


def _token(event: dict) -> tuple[str | None, list[str]]:
    """The event as a path token (None for bookkeeping events), and the extra features it brings."""
    kind = COMMAND_EVENTS.get(event["eventType"])
    extra: list[str] = []
    if event["eventType"] in CRASH_EVENTS:
        extra.append(CRASH_EVENTS[event["eventType"]])
    if (
        event["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_STARTED"
        and event["activityTaskStartedEventAttributes"].get("attempt", 1) > 1
    ):
        extra.append("crash:activity_retried")
    if kind is None:
        return None, extra
    attributes: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventAttributes")), {})
    name = ""
    payloads = None
    if kind == "activity":
        name, payloads = attributes["activityType"]["name"], attributes.get("input")
    elif kind == "child":
        name = attributes["workflowType"]["name"]
    elif kind in ("signal", "signal_out"):
        name = attributes.get("signalName", "")
        payloads = attributes.get("input")
    elif kind == "update":
        request = attributes.get("acceptedRequest", {}).get("input", {})
        name, payloads = request.get("name", ""), request.get("args")
    elif kind == "marker":
        name = attributes.get("markerName", "")
        if name in MARKERS:  # a local activity by its type, a patch by its id
            kind, field_name = MARKERS[name]
            details: dict = next(_json_payloads(attributes.get("details", {}).get(field_name)), {})
            name = str(details.get("activity_type") or details.get("id") or "")
    token = f"{kind}:{name}" if name else kind
    extra += [f"{token}:{key}={value}" for key, value in _payload_values(payloads)]
    return token, extra


def features(captured: Captured) -> set[str]:
    found: set[str] = set()
    first = captured.events[0]["workflowExecutionStartedEventAttributes"] if captured.events else {}
    if first.get("continuedExecutionRunId"):
        found.add("started_as_continuation")
    previous = "start"
    for event in captured.events:
        token, extra = _token(event)
        found.update(extra)
        if token is None:
            continue
        found.add(token)
        found.add(f"{previous} -> {token}")
        previous = token
    return found


def select(candidates: Iterable[Captured], kept: Iterable[Captured] = ()) -> list[Captured]:
    """Per workflow type, a greedy cover of every feature seen that `kept` does not show yet, preferring short
    histories."""
    covered: dict[str, set[str]] = {}
    for captured in kept:
        covered.setdefault(captured.workflow_type, set()).update(captured.features)
    by_type: dict[str, list[Captured]] = {}
    for captured in candidates:
        captured.features = frozenset(features(captured))
        by_type.setdefault(captured.workflow_type, []).append(captured)
    chosen: list[Captured] = []
    for workflow_type, runs in sorted(by_type.items()):
        runs.sort(key=lambda c: (len(c.events), c.workflow_id))
        left = set().union(*(c.features for c in runs)) - covered.get(workflow_type, set())
        while left:
            best = max(runs, key=lambda c: (len(c.features & left), -len(c.events)))
            chosen.append(best)
            left -= best.features
    return chosen


def main(argv: list[str]) -> None:
    """`python -m tests.replay.corpus select [--replace] CAPTURE_DIR`: add to the committed corpus the histories
    of the capture that show what it does not show yet. The histories already there stay: they stand for runs that
    may still be open in production. `--replace` starts the corpus afresh (only once no run of an older version of
    any workflow is open)."""
    replace = "--replace" in argv
    args = [a for a in argv if a != "--replace"]
    if len(args) != 2 or args[0] != "select":
        sys.exit("usage: python -m tests.replay.corpus select [--replace] CAPTURE_DIR")
    captured = [c for _, c in load(Path(args[1]))]
    if replace:
        for old in HISTORIES.glob("*/*.json.gz"):
            old.unlink()
    kept = [c for _, c in load()]
    chosen = select(captured, kept)
    for c in chosen:
        c.save(HISTORIES)
    per_type: dict[str, int] = {}
    for c in chosen:
        per_type[c.workflow_type] = per_type.get(c.workflow_type, 0) + 1
    print(
        f"added {len(chosen)} of {len(captured)} captured histories to the {len(kept)} kept: "
        + (", ".join(f"{t} {n}" for t, n in sorted(per_type.items())) or "nothing new")
    )


if __name__ == "__main__":
    main(sys.argv[1:])
