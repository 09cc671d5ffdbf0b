# The two commands of the README: `make run` and `make test`. Each installs what it needs
# into .venv first (re-installing only when pyproject.toml changes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: run test test-chaos test-hosts bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/imagepipe run

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-chaos: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m chaos tests/chaos $(PYTEST_ARGS)

test-hosts: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m hosts tests/hosts $(PYTEST_ARGS)

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-test
	$(PIP) install --quiet -e '.[test,bench]'
	touch $@

# The core against libvips and Pillow, then the whole pipeline on PostgreSQL, Redis and
# SeaweedFS (both print ratios measured in the same run; docs/benchmarks.md).
bench: $(VENV)/.installed-bench
	$(BIN)/python bench/renditions.py
	$(BIN)/python bench/e2e.py

# What .ci/run checks before the suite: lint, format (ruff, pinned in the test extras) and types.
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache
