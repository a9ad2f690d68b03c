# Solidity checks beyond `forge-test`: the stateful invariants with a fresh seed per run, and Slither.
#  - invariants: forge reads FOUNDRY_FUZZ_SEED; it changes per run (override: `make forge-test
#    FOUNDRY_FUZZ_SEED=0x...` to replay a failure) and is printed first;
#  - Slither (PyPI slither-analyzer) lives in its own virtualenv, so that its pins never touch the
#    project's; it analyses a solc standard-json input compiled through the solcjs shim, from a
#    folder without foundry.toml (its foundry mode trips over forge's duplicate source paths).
SLITHER_VENV := .venv-slither
SLITHER_STAMP := $(SLITHER_VENV)/.knexa-installed
SLITHER_VERSION := 0.11.6
FOUNDRY_FUZZ_SEED ?= $(shell printf '0x%x' "$$(date +%s)")
export FOUNDRY_FUZZ_SEED

.PHONY: slither slither-venv forge-seed

forge-seed:
	@echo "forge fuzz/invariant seed: $(FOUNDRY_FUZZ_SEED)"

forge-test: forge-seed

$(SLITHER_STAMP): mk/contracts.mk
	@test -x $(SLITHER_VENV)/bin/python || $(PYTHON) -m venv $(SLITHER_VENV)
	$(SLITHER_VENV)/bin/python -m pip install --quiet slither-analyzer==$(SLITHER_VERSION)
	@touch $@

slither-venv: $(SLITHER_STAMP)  ## Slither in .venv-slither

slither: $(SLITHER_STAMP) $(NPM_STAMP) $(PY_STAMP)  ## static analysis of contracts/src: fails on any high or medium finding
	$(BIN)/python tools/slither.py --slither $(SLITHER_VENV)/bin/slither

test: slither
