# Every target sets up .venv on first use: a fresh clone needs only `make plan ENV=dev` or `make test`.
# `make test` and `make bench` first install the programs the tests run (scripts/install_tools.py): as root
# with apt-get, otherwise unpacked into .tools/, whose bin folder comes first on PATH for every recipe.
# make exits 2 whenever a command fails (GNU make's own rule; its message ends `Error <the command's code>`):
# scripts that branch on mcpfleet's exit codes run .venv/bin/mcpfleet directly.
ENV ?= dev
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOOLS := .tools
export PATH := $(CURDIR)/$(TOOLS)/bin:$(PATH)

.PHONY: plan validate test lint format golden schema dashboards bench clean tools

$(STAMP): pyproject.toml
	$(PYTHON) -m scripts.install_tools --venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

plan: $(STAMP)
	$(BIN)/mcpfleet plan --env $(ENV)

validate: $(STAMP)
	$(BIN)/mcpfleet validate

# HAProxy 2.6, promtool, openssl and the e2e Node tooling; fast when all is in place.
tools: | $(STAMP)
	$(PYTHON) -m scripts.install_tools --tools $(TOOLS)

test: tools $(STAMP)
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

bench: tools $(STAMP)
	$(BIN)/python -m scripts.bench_plan
	$(BIN)/python -m scripts.bench_gateway --profile build/bench
	$(BIN)/python -m scripts.bench_router_logic
	$(BIN)/python -m scripts.bench_fleet

# The end-to-end tests' Node tooling alone (Node 22 from npm, server-everything, the conformance suite),
# exactly as tests/e2e/node/package-lock.json pins it; `make test` installs it too.
.PHONY: e2e-deps
e2e-deps:
	$(PYTHON) -m scripts.install_tools --tools $(TOOLS) --only node

clean:
	rm -rf build
