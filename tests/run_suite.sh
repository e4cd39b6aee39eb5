#!/usr/bin/env bash
# The whole suite as two pytest processes side by side (`make test`): the integration tests that share the session's
# stack, one at a time, in the foreground; the unit tests and the integration tests that bring up a whole stack of
# their own in the background, their output shown once both have ended. Fails when either fails.
# Extra pytest arguments (PYTEST_ADDOPTS) reach both.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OWN_STACK=(tests/integration/test_chaos.py tests/integration/test_devstack_shutdown.py)
log=$(mktemp -t standalone-tests.XXXXXX.log)

"$PY" -m pytest tests/unit "${OWN_STACK[@]}" >"$log" 2>&1 &
standalone=$!
trap 'kill $standalone 2>/dev/null' INT TERM

"$PY" -m pytest tests/integration "${OWN_STACK[@]/#/--ignore=}"
on_stack=$?
wait $standalone
alone=$?

echo
echo "=== unit tests and tests with a stack of their own (${OWN_STACK[*]}) ==="
cat "$log"
rm -f "$log"
echo "=== session-stack tests: exit $on_stack; the others: exit $alone ==="
exit $(( on_stack != 0 ? on_stack : alone ))
