# Every target sets up .venv on first use: a fresh clone needs only `make plan ENV=dev` or `make test`.
ENV ?= dev
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: plan validate test lint format golden schema dashboards bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

plan: $(STAMP)
	$(BIN)/mcpfleet plan --env $(ENV)

validate: $(STAMP)
	$(BIN)/mcpfleet validate

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy .

format: $(STAMP)
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

# Regenerate committed artifacts from their sources (tests fail when these drift).
schema: $(STAMP)
	$(BIN)/python -m scripts.generate schema

golden: $(STAMP)
	$(BIN)/python -m scripts.generate golden

dashboards: $(STAMP)
	$(BIN)/python -m dashboards

bench: $(STAMP)
	$(BIN)/python -m scripts.bench_plan
	$(BIN)/python -m scripts.bench_gateway

# The end-to-end tests' Node tooling (Node 22 from npm, server-everything, the conformance suite), exactly
# as tests/e2e/node/package-lock.json pins it. CI runs it before `make test`.
.PHONY: e2e-deps
e2e-deps:
	npm ci --prefix tests/e2e/node --no-audit --no-fund

clean:
	rm -rf build
