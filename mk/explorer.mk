# The audit explorer (explorer/), its browser tests and the docker compose deployment.
#  - browser tests drive a system chromium through Playwright (Playwright's own browser download
#    cannot be used offline, see docs/toolchain.md). `make test` uses the chromium it finds
#    (KNEXA_CHROMIUM, `command -v`, the usual paths) and otherwise installs Debian's with apt-get,
#    which needs root: without root it stops with one line saying what to run;
#  - docker-compose 1.29.2 (only to validate docker-compose.yml offline) pins old libraries, so it
#    lives in its own virtualenv, built with PIP_CONSTRAINT cython<3 (PyYAML 5 does not build with 3).
CHROMIUM_PATHS := /usr/bin/chromium /usr/lib/chromium/chromium /usr/bin/chromium-browser /snap/bin/chromium \
  /usr/bin/google-chrome /opt/google/chrome/chrome
CHROMIUM_FOUND ?= $(firstword $(KNEXA_CHROMIUM) \
  $(shell command -v chromium chromium-browser google-chrome 2> /dev/null) $(wildcard $(CHROMIUM_PATHS)))
# the browser tests read it (tests/explorer/test_browser.py)
export KNEXA_CHROMIUM := $(or $(CHROMIUM_FOUND),/usr/bin/chromium)
COMPOSE_VENV := .venv-compose
COMPOSE_STAMP := $(COMPOSE_VENV)/.knexa-installed

.PHONY: explorer compose-venv compose-config chromium

chromium:  ## a chromium for the browser tests: the one found, else Debian's (apt-get, as root)
ifeq ($(CHROMIUM_FOUND),)
	@if [ "$$(id -u)" != 0 ]; then echo "the browser tests need chromium: run \`sudo apt-get install -y chromium\` or set KNEXA_CHROMIUM to a chromium binary" >&2; exit 1; fi
	apt-get update && apt-get install -y chromium
else
	@echo "chromium: $(CHROMIUM_FOUND)"
endif

$(COMPOSE_STAMP): mk/explorer.mk
	@test -x $(COMPOSE_VENV)/bin/python || $(PYTHON) -m venv $(COMPOSE_VENV)
	echo 'cython<3' > $(COMPOSE_VENV)/constraints.txt
	PIP_CONSTRAINT=$(COMPOSE_VENV)/constraints.txt $(COMPOSE_VENV)/bin/python -m pip install --quiet docker-compose==1.29.2
	@touch $@

compose-venv: $(COMPOSE_STAMP)  ## docker-compose 1.29.2 in .venv-compose (validates docker-compose.yml offline)

compose-config: $(COMPOSE_STAMP)  ## validate docker-compose.yml
	$(COMPOSE_VENV)/bin/docker-compose -f docker-compose.yml config -q

explorer: $(PY_STAMP) $(NPM_STAMP)  ## serve the audit explorer on 127.0.0.1:8000 over .knexa/deployment.json
	$(BIN)/python -c 'from explorer.cli import app; app()' serve $(EXPLORER_ARGS)

pytest: chromium $(COMPOSE_STAMP)
