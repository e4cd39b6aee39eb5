"""No test may hang the suite (a pytest plugin, loaded by tests/conftest.py).

A hung test used to hold CI until its hard limit and print nothing of where it hung. Now:
- an async test still running after TEST_TIMEOUT seconds (900 by default: the longest, the fuzz run, takes about
  260) is cancelled where it waits and fails, its traceback showing that await; the session goes on;
- a SIGTERM (tests/run_suite.sh's own limit on each pytest process, or CI's) interrupts pytest as Ctrl-C would:
  it prints the running test's traceback, the threads' stacks and the summary so far, instead of dying silently.
Sync code that blocks the event loop is not cancellable; the SIGTERM covers it."""

import asyncio
import faulthandler
import functools
import inspect
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import pytest

TEST_TIMEOUT = float(os.environ.get("TEST_TIMEOUT", "900"))


def bounded(test: Callable[..., Any], limit: float) -> Callable[..., Any]:
    """`test` (a coroutine function) failing once it has run `limit` seconds."""

    @functools.wraps(test)
    async def run(*args: Any, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(limit) as deadline:
                return await test(*args, **kwargs)
        except TimeoutError:
            if deadline.expired():
                pytest.fail(f"still running after {limit:.0f} s (TEST_TIMEOUT): cancelled where it waited, above")
            raise  # the test's own timeout

    return run


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        test = getattr(item, "obj", None)
        # Hypothesis's async tests run their examples through a target of their own: left as they are.
        if inspect.iscoroutinefunction(test) and not getattr(test, "is_hypothesis_test", False):
            item.obj = bounded(test, TEST_TIMEOUT)  # type: ignore[attr-defined]


def _interrupt(signum: int, _frame: object) -> None:
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    try:
        tasks = asyncio.all_tasks(asyncio.get_running_loop())
    except RuntimeError:
        tasks = set()  # no event loop running: the threads' stacks say it all
    for task in tasks:  # an async test waits in the loop's select: where each coroutine awaits says more
        print(f"--- task {task.get_name()}, awaiting (innermost last):", file=sys.stderr)
        print("\n".join(awaiting(task.get_coro())), file=sys.stderr)
    raise KeyboardInterrupt(f"signal {signum}: the suite was stopped")


def awaiting(coro: Any) -> list[str]:
    """The chain of awaits a suspended coroutine is in, outermost first (a task's own stack shows only the first)."""
    lines = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None) or getattr(coro, "ag_frame", None)
        if frame is None:
            break
        lines.append(f'  File "{frame.f_code.co_filename}", line {frame.f_lineno}, in {frame.f_code.co_name}')
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None) or getattr(coro, "ag_await", None)
    return lines


def pytest_configure(config: pytest.Config) -> None:
    signal.signal(signal.SIGTERM, _interrupt)
