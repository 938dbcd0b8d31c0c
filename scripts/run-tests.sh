#!/usr/bin/env bash
# Run the whole test suite: starts a throw-away PostgreSQL on 127.0.0.1 so the storage tests run
# on both backends, then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
export AVREC_TEST_POSTGRES_URL=$(bash scripts/postgres.sh start)
trap 'bash scripts/postgres.sh stop' EXIT
mkdir -p test-artifacts
.venv/bin/ruff check --quiet src tests benchmarks
.venv/bin/ruff format --check --quiet src tests benchmarks
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
.venv/bin/mypy --no-incremental >/dev/null || .venv/bin/mypy --no-incremental
.venv/bin/python -m pytest -p no:cacheprovider -q --timeout=900 "$@"
