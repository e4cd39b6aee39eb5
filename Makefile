# The two commands: `make run` and `make test`. Each sets up whatever is missing first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test bench temporal-cli clean-data compose-check

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==26.3
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

temporal-cli: $(VENV)/.installed
	$(PY) -m devstack.temporal_cli

run: temporal-cli
	$(PY) -m devstack.run

test: temporal-cli
	$(PY) -m pytest

# Benchmarks (PRODUCT.md §5): printed figures from a real stack of their own, beside make run's.
bench: temporal-cli
	$(PY) -m bench

compose-check:
	bash devstack/compose_check.sh

# Removes make run's data (Postgres, Temporal history, logs). Stop make run first.
clean-data:
	rm -rf .data
