# avrec: `make demo` sets up and runs the demo; `make test` sets up and runs the whole test suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test system-deps lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements-nodeps.txt
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[all,dev]'
	$(BIN)/pip install -q --no-deps -r requirements-nodeps.txt
	touch $@

demo: setup
	OPENBLAS_NUM_THREADS=1 $(BIN)/avrec demo

system-deps:
	bash scripts/system-deps.sh

test: setup system-deps
	bash scripts/run-tests.sh

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: setup system-deps
	bash scripts/run-benchmarks.sh

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache test-artifacts
