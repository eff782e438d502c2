# VAS — two commands: `make up` runs the product, `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test lint test-deps install clean notebooks

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start API, worker and media node on the embedded default (SQLite + embedded Redis).
up: $(STAMP)
	$(BIN)/vas up

## JupyterLab on notebooks/ (run `make up` in another terminal first and export the
## VAS_CLIENT_SECRET it printed). As root (containers): make notebooks JUPYTER_ARGS=--allow-root
notebooks: $(STAMP)
	$(BIN)/jupyter lab --ip=127.0.0.1 --notebook-dir=notebooks $(JUPYTER_ARGS)

## Debian packages the tests need (GStreamer RTSP server for test cameras, Chromium).
test-deps:
	bash scripts/install-test-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check api jobs media core vas_client tests benchmarks
	$(BIN)/mypy

## Install everything the tests need, lint, type-check, run the whole suite.
## Screenshots of the browser tests land in ./artifacts (ignored by git).
test: $(STAMP) test-deps lint
	VAS_TEST_ARTIFACTS=$(CURDIR)/artifacts $(BIN)/python -m pytest

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
