# The Pass@1 sandbox (agent/sandbox.py) runs generated programs under bubblewrap, which works
# without root (user, PID, network and mount namespaces). `make test` installs Debian's package
# when `bwrap` is missing, which needs root: without root it stops with one line saying what to run.
BWRAP_FOUND ?= $(shell command -v bwrap 2> /dev/null)

.PHONY: bubblewrap

bubblewrap:  ## bubblewrap for the Pass@1 sandbox: the one found, else Debian's (apt-get, as root)
ifeq ($(BWRAP_FOUND),)
	@if [ "$$(id -u)" != 0 ]; then echo "the Pass@1 sandbox needs bubblewrap: run \`sudo apt-get install -y bubblewrap\`" >&2; exit 1; fi
	apt-get update && apt-get install -y bubblewrap
else
	@echo "bubblewrap: $(BWRAP_FOUND)"
endif

pytest: bubblewrap
demo: bubblewrap
