"""The suite's time limits (tests/time_limit.py): a hung async test fails where it waits, and a SIGTERM to pytest
prints where it was instead of ending it silently."""

import asyncio
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.time_limit import bounded


def test_an_async_test_past_its_limit_fails_at_the_await_it_hung_on():
    async def hangs():
        await asyncio.Event().wait()

    began = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="still running after 0 s") as failed:
        asyncio.run(bounded(hangs, 0.2)())
    assert time.monotonic() - began < 5
    # The cancellation it failed on came from the test's own await.
    assert isinstance(failed.value.__context__, TimeoutError)
    assert "hangs" in "".join(_frames(failed.value.__context__.__context__))


def test_a_tests_own_timeout_is_not_taken_for_the_limit():
    async def gives_up():
        await asyncio.wait_for(asyncio.Event().wait(), 0.05)

    with pytest.raises(TimeoutError):
        asyncio.run(bounded(gives_up, 60)())


# The marker is printed once the test waits where the traceback must show it: the sleep (a moment after the print,
# hence line 4 or 5), the await (call_soon runs the print only once the coroutine is suspended there).
SYNC_TEST = "import time\n\ndef test_sleeps():\n    print('SLEEPING-NOW', flush=True)\n    time.sleep(60)\n"
ASYNC_TEST = (
    "import asyncio\n\nasync def test_sleeps():\n"
    "    asyncio.get_running_loop().call_soon(lambda: print('SLEEPING-NOW', flush=True))\n"
    "    await asyncio.Event().wait()\n"
)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (SYNC_TEST, r'test_sleeps\.py", line [45] in test_sleeps'),  # from the threads' stacks
        (ASYNC_TEST, r'test_sleeps\.py", line 5, in test_sleeps'),  # from the awaits of the loop's tasks
    ],
    ids=["sync", "async"],
)
def test_a_sigterm_makes_pytest_say_where_it_stopped(tmp_path: Path, body: str, where: str):
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.time_limit"]\n')
    (tmp_path / "test_sleeps.py").write_text(body)
    options = ["-s", "-p", "no:cacheprovider", "-o", "asyncio_mode=auto", "--rootdir", str(tmp_path)]
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", *options, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert child.stdout is not None
    try:
        for line in child.stdout:  # in the test: the signal handler is in place
            if "SLEEPING-NOW" in line:
                break
        child.send_signal(signal.SIGTERM)
        out = child.communicate(timeout=30)[0]
    finally:
        child.kill()  # a pytest that did not end on SIGTERM must not outlive the test
    assert child.returncode == 2, out  # interrupted, not killed (-15)
    assert "KeyboardInterrupt: signal 15" in out, out
    assert re.search(where, out), out


def _frames(error: BaseException) -> list[str]:
    import traceback

    return traceback.format_tb(error.__traceback__)
