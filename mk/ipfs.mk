# The project-local IPFS node (js-ipfs, see docs/toolchain.md): tests that need a real node use it
# unless a Kubo `ipfs` binary is on PATH. Installing takes 2-4 minutes once; the stamp makes re-runs free.
IPFS_DIR := tools/ipfs
IPFS_STAMP := $(IPFS_DIR)/node_modules/.knexa-installed

.PHONY: ipfs ipfs-node

ipfs: $(IPFS_STAMP)  ## install the project-local IPFS node (js-ipfs) into tools/ipfs

# `npm install`, not `npm ci`: the lockfile misses an optional git dependency of js-ipfs.
$(IPFS_STAMP): $(IPFS_DIR)/package.json $(wildcard $(IPFS_DIR)/package-lock.json)
	$(IPFS_DIR)/ipfs.sh install
	@touch $@

ipfs-node: $(IPFS_STAMP) $(PY_STAMP)  ## run an offline IPFS node on a free loopback port (Ctrl-C stops it)
	$(BIN)/python -c 'from exchange.cli import app; app()' node

# The Python tests start a real node (tests/exchange/conftest.py).
pytest: $(IPFS_STAMP)

.PHONY: bench-exchange
bench-exchange: bootstrap $(IPFS_STAMP)  ## store throughput, bundle sizes, seal/open -> bench/results/exchange.json
	$(BIN)/python bench/exchange.py
