# Lumina Analytics. The two set-up commands: `make demo` and `make test`.
# Everything installs into .venv from the pinned requirements.lock.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.9
KERNEL := lumina
HOST ?= 127.0.0.1
PORT ?= 8866
DEMO_DAYS ?= 30
DEMO_SCALE ?= 1.0

.PHONY: help venv demo demo-data precompute reports serve test test-fast check lint format lab lock bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --python $(BIN)/python --compile-bytecode -q -r requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -q -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Lumina Analytics" >/dev/null
	@touch $(STAMP)

venv: $(STAMP)  ## create .venv from the pinned versions (only when missing or outdated)

demo-data: venv  ## simulate 30 days of Lumina telemetry and ingest it into data/lumina.duckdb
	$(BIN)/lumina-analytics demo --days $(DEMO_DAYS) --scale $(DEMO_SCALE)

precompute: venv  ## scheduled results the dashboards read: anomaly scores and persisted forecasts
	$(BIN)/lumina-analytics anomaly detect --metric requests --by provider
	$(BIN)/lumina-analytics anomaly detect --metric errors --by provider
	$(BIN)/lumina-analytics anomaly detect --metric latency_p95 --by provider
	$(BIN)/lumina-analytics forecast --metric requests --by provider --horizon 48 --persist -o reports/forecast-requests.csv

reports: venv  ## run every report notebook into reports/<date>/ with reports/index.html
	$(BIN)/lumina-analytics report run --all || echo "some reports failed: see reports/index.html"

serve: venv  ## serve the Voila dashboards on $(HOST):$(PORT)
	$(BIN)/lumina-analytics dashboards serve --host $(HOST) --port $(PORT)

demo: demo-data precompute reports  ## build the demo warehouse, run the reports, serve the dashboards (NO_SERVE=1 stops before serving)
	@if [ -n "$(NO_SERVE)" ]; then \
	  echo "NO_SERVE set: warehouse in data/lumina.duckdb, reports in reports/index.html; serve later with: make serve"; \
	else $(MAKE) --no-print-directory serve; fi

test: venv  ## run the whole suite: unit, notebooks (nbval), browser tests
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: venv  ## unit tests only (skip slow notebook and browser tests)
	$(BIN)/python -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

check: venv  ## ruff and mypy
	$(BIN)/ruff check lumina_analytics tests benchmarks
	$(BIN)/ruff format --check lumina_analytics tests benchmarks
	$(BIN)/mypy

format: venv  ## apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix lumina_analytics tests benchmarks
	$(BIN)/ruff format lumina_analytics tests benchmarks

lab: venv  ## JupyterLab on 127.0.0.1 with the project's kernel
	$(BIN)/jupyter lab --ip=$(HOST) --no-browser --notebook-dir=.

bench: venv  ## run every benchmark (prints tables; results in benchmarks/results/)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; \
	  case $$b in *bench_spark.py) args="--spans 1000000";; *) args="";; esac; \
	  $(BIN)/python $$b $$args || exit 1; done

lock: venv  ## re-resolve requirements.in into requirements.lock (on purpose, then test)
	$(BIN)/uv pip compile requirements.in --python-version 3.11 -q -o requirements.lock

clean:  ## remove generated data, reports and caches (keeps .venv)
	rm -rf reports data/*.duckdb* data/demo-telemetry .pytest_cache .mypy_cache .ruff_cache test-artifacts
