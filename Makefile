# The two commands: `make run` and `make test`. Each sets up whatever is missing first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint fuzz bench bench-quick chaos temporal-cli clean-data compose-check replay-histories backup restore

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==26.3
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

temporal-cli: $(VENV)/.installed
	$(PY) -m devstack.temporal_cli

run: temporal-cli
	$(PY) -m devstack.run

# Two pytest processes side by side (tests/run_suite.sh): the integration tests on the session's stack one at a
# time in one, the unit tests and the tests with a whole stack of their own in the other. Two processes on the
# session's stack were slower on this 2-core machine, not faster: their stacks contend and the timed waits stretch.
test: lint temporal-cli
	PY=$(PY) bash tests/run_suite.sh

# A long schemathesis run against the live OpenAPI of a test stack (make test runs a bounded one): FUZZ_EXAMPLES
# positive examples per operation and identity (superuser, member), half as many negative ones; up to four hours
# (the suite's limit a test, TEST_TIMEOUT, is 15 minutes: tests/time_limit.py).
FUZZ_EXAMPLES ?= 200
fuzz: temporal-cli
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) TEST_TIMEOUT=14400 $(PY) -m pytest tests/integration/test_fuzz_api.py -p no:cacheprovider -q -s

# Lint and types (PRODUCT.md §7): ruff's rules, ruff's formatting and mypy, all configured in pyproject.toml.
lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# Benchmarks (PRODUCT.md §5): printed figures from a real stack of their own, beside make run's.
bench: temporal-cli
	$(PY) -m bench

# Every benchmark at a small size, in under five minutes: the figures' shape, not their value (bench/README.md).
bench-quick: temporal-cli
	$(PY) -m bench --quick

# The chaos run (PRODUCT.md §4.10, bench/chaos): N ACH payments of every sandbox scenario, M loans, auto-pay bills
# and a month-end posting in flight through bank faults, worker SIGKILLs, a Temporal and a Postgres restart; prints
# one line and fails when any check does (make test runs a bounded one: tests/integration/test_chaos.py).
N ?= 1000
M ?= 100
chaos: temporal-cli
	$(PY) -m bench.chaos --payments $(N) --loans $(M)

# Refreshes the replay corpus (tests/replay/histories) from a run of the integration suite: after a workflow
# change made safe with workflow.patched or a new workflow type (README: changing a workflow safely).
CAPTURE ?= .data/replay-capture
replay-histories: temporal-cli
	rm -rf $(CAPTURE)
	$(PY) -m pytest tests/integration -q -p no:cacheprovider --capture-histories $(abspath $(CAPTURE))
	$(PY) -m tests.replay.corpus select $(CAPTURE)

# Backups (README: Backups and recovery): `make backup` dumps DATABASE_URL (make run's embedded Postgres when unset) into
# BACKUP_DIR now, verified, recorded, pruned past BACKUP_RETENTION. `make restore` restores BACKUP (a file name in
# BACKUP_DIR; the newest when unset) into DATABASE_URL: stop the API and the worker first. ENVIRONMENT=production
# refuses unless CONFIRM names the database overwritten.
backup: $(VENV)/.installed
	$(PY) -m core.backups backup

restore: $(VENV)/.installed
	$(PY) -m core.backups restore $(BACKUP) $(if $(CONFIRM),--confirm $(CONFIRM))

compose-check:
	bash devstack/compose_check.sh

# Removes make run's data (Postgres, Temporal history, logs). Stop make run first.
clean-data:
	rm -rf .data
