#!/usr/bin/env bash
# The whole suite as two pytest processes side by side (`make test`): the integration tests that share the session's
# stack, one at a time, in the foreground; in the background the unit tests, the integration tests that bring up a
# whole stack of their own, and on a second session stack the two long API-bound ones (the fuzz run and the
# authorization matrix: HTTP against the API, little workflow work) and the SIGKILL of a worker in mid-transfers;
# its output shown once both have ended. Fails when either fails. (The SIGKILL of 200 ACH payments in flight stays
# in the foreground: beside the rest of the suite it once left a re-presented payment queued: bench notes.) The
# compose check needs no stack at all and runs minutes when it builds the Compose plugin: in the background too; so
# do five long files of worker kills and day-by-day servicing (month-end posting and its catch-up, standing
# instructions, loan servicing, rejected ACH files: seven minutes) and the loans' terms and allocations (day-by-day
# servicing too, a minute and a half), which keeps the two processes about even (the foreground was the whole run's
# length: 29 of CI's 32 minutes on 2026-12-02; 24.5 against 21.5 on 2026-12-03).
# Extra pytest arguments (PYTEST_ADDOPTS) reach both. Neither may hang CI: each is stopped after SUITE_TIMEOUT seconds
# (an hour; both take under half of it) with a SIGTERM, on which pytest prints where it was (tests/time_limit.py), and
# SIGKILLed two minutes later if it has not ended; a single async test is failed after TEST_TIMEOUT (900 s).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
LIMIT=(timeout --kill-after=120 "${SUITE_TIMEOUT:-3600}")
OWN_STACK=(tests/integration/test_chaos.py tests/integration/test_devstack_shutdown.py
           tests/integration/test_fuzz_api.py tests/integration/test_authorization_matrix.py
           tests/integration/test_worker_crash.py
           tests/integration/test_compose.py
           tests/integration/test_interest.py tests/integration/test_standing_worker_kill.py
           tests/integration/test_interest_catch_up.py tests/integration/test_loan_servicing.py
           tests/integration/test_ach_file_rejection.py tests/integration/test_loan_terms_and_allocations.py)
log=$(mktemp -t standalone-tests.XXXXXX.log)

"${LIMIT[@]}" "$PY" -m pytest tests/unit "${OWN_STACK[@]}" >"$log" 2>&1 &
standalone=$!
# In the background too, waited for at once: a Ctrl-C or a SIGTERM to this script reaches both (each `timeout` is a
# process group of its own, out of the terminal's) and each prints where it was.
"${LIMIT[@]}" "$PY" -m pytest tests/integration "${OWN_STACK[@]/#/--ignore=}" &
session_stack=$!
trap 'kill $standalone $session_stack 2>/dev/null' INT TERM
wait $session_stack
on_stack=$?
wait $session_stack 2>/dev/null  # when a signal interrupted the first wait: until it has printed its summary
wait $standalone
alone=$?
echo
echo "=== unit tests and tests on a stack of their own (${OWN_STACK[*]}) ==="
cat "$log"
rm -f "$log"
echo "=== session-stack tests: exit $on_stack; the others: exit $alone ==="
exit $(( on_stack != 0 ? on_stack : alone ))
