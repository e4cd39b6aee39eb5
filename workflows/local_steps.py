"""A step moved from an activity to a local activity behind a patch: new runs (and runs that reach it after the
deploy) run it in the worker, within the workflow task that needs it; histories from before the patch keep the
activity they recorded (README: Changing a workflow safely)."""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio import workflow

Arg = TypeVar("Arg")
Result = TypeVar("Result")


async def local_since(patch: str, step: Callable[[Any, Arg], Awaitable[Result]], arg: Arg, **options: Any) -> Result:
    """Runs the activity method `step(arg)` as a local activity since `patch`, else as an activity; `options` are
    the timeouts and retry policy, the same for both."""
    if workflow.patched(patch):
        return await workflow.execute_local_activity_method(step, arg, **options)
    return await workflow.execute_activity_method(step, arg, **options)
