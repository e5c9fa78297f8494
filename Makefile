# Everything runs from a local virtualenv, created on first use.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install install-browser run migrate test chaos soak bench lint format docs lock clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## DATABASE_URL and BROKER_URL, or else a private PostgreSQL and Redis with their data in var/;
## then the migrations and the test pipeline, then every process in the foreground (Ctrl-C stops).
run: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m tools.run Procfile

## Only the migrations and the test pipeline (on private servers, started and stopped, if unset).
migrate: install
	$(BIN)/python -m tools.run --bootstrap-only

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## The tests that start no process of their own (no API, worker or browser): under 30 s.
test-fast: install
	NO_TEST_PROCESSES=1 $(BIN)/python -m pytest -q -m "not system and not browser and not faults" $(PYTEST_ARGS)

## Debian's Chromium for the browser tests (tests/ui), unless /usr/bin/chromium is there (root).
install-browser:
	test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }

## Faults across hosts with 200 jobs each (tests/chaos): a summary line per fault, then totals.
## `make test` runs the same suite with 100 jobs (CHAOS_JOBS).
chaos: install
	CHAOS_JOBS=$${CHAOS_JOBS:-200} timeout 1800 $(BIN)/python -m pytest tests/chaos -q $(PYTEST_ARGS)

## Bounded load with worker kills and model faults (SOAK_ARGS="--seconds 60" to shorten).
soak: install
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

## Throughput, latency, CPU and memory figures against issue 15's targets; writes bench/results/
## (BENCH_ARGS="--quick"). On private servers started for the run, unless BENCH_POSTGRES_URL and
## BENCH_REDIS_URL name existing ones (docs/performance.md#how-to-bench).
bench: install
	$(BIN)/python -m bench.bench $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Write the generated references, docs/configuration.md and docs/steps.md, from the code.
docs: install
	$(BIN)/python -m tools.docs

## Pin what the image and CI's production check install (requirements.lock) from pyproject.toml;
## keeps the pins that still fit (LOCK_ARGS=--upgrade moves every package to its newest release).
lock: install
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
		--annotation-style=line $(LOCK_ARGS) -o requirements.lock pyproject.toml

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
