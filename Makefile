# VAS — two commands: `make up` runs the product, `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev
PIP    := $(BIN)/pip install --quiet --disable-pip-version-check

.PHONY: up test lint test-deps install clean notebooks perf lock

# Some machines (CI's among them) set PYTHONDONTWRITEBYTECODE: then every VAS process and
# every pytest worker compiles all of its sources again (and pytest re-rewrites the asserts
# of its plugins). Byte-code caches are written here.
unexport PYTHONDONTWRITEBYTECODE

# The product alone for `make up`; the test and notebook tools on top for the rest. Both
# install the exact versions CI tested from the lock files, then VAS itself without
# resolving anything again (`make lock` re-resolves them from pyproject.toml).
LOCK     := requirements.lock
DEV_LOCK := requirements-dev.lock

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -r $(LOCK)
	$(PIP) --no-deps -e .
	touch $(STAMP)

$(DEV): $(STAMP) $(DEV_LOCK)
	$(PIP) -r $(DEV_LOCK)
	touch $(DEV)

install: $(DEV)

## Start API, worker and media node on the embedded default (SQLite + embedded Redis).
up: $(STAMP)
	$(BIN)/vas up

## JupyterLab on notebooks/ (run `make up` in another terminal first and export the
## VAS_CLIENT_SECRET it printed). As root (containers): make notebooks JUPYTER_ARGS=--allow-root
notebooks: $(DEV)
	$(BIN)/jupyter lab --ip=127.0.0.1 --notebook-dir=notebooks $(JUPYTER_ARGS)

## Debian packages the tests need (GStreamer RTSP server for test cameras, Chromium).
test-deps:
	bash scripts/install-test-deps.sh

lint: $(DEV)
	$(BIN)/ruff check api jobs media core vas_client tests benchmarks deploy
	$(BIN)/mypy

## Install everything the tests need, lint, type-check, run the whole suite.
## Screenshots of the browser tests land in ./artifacts (ignored by git).
test: $(DEV) test-deps lint
	VAS_TEST_ARTIFACTS=$(CURDIR)/artifacts $(BIN)/python -m pytest

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

## Re-resolve both lock files from pyproject.toml with uv (into the venv), newest allowed
## releases; run `make test` on the result before committing it. The product's lock holds
## for every Python 3.11 (the image's is Debian's 3.11.2); the dev lock for 3.11.7 (CI's).
lock: $(STAMP)
	$(PIP) 'uv>=0.9,<1'
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --custom-compile-command "make lock" \
		--annotation-style line -o $(LOCK)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11.7 --custom-compile-command "make lock" \
		--annotation-style line -o $(DEV_LOCK)

## Timing targets (first frame p50 and the like): not part of `make test`; the figures and
## the benchmarks that produce them are in docs/performance.md.
perf: $(DEV) test-deps
	$(BIN)/python -m pytest -m perf -n 0  # one at a time: timings
