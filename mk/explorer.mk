# The audit explorer (explorer/), its browser tests and the docker compose deployment.
#  - browser tests drive Debian's chromium through Playwright (Playwright's own browser download fails
#    here, see docs/toolchain.md); we run as root locally and in CI, so apt-get is allowed;
#  - docker-compose 1.29.2 (only to validate docker-compose.yml offline) pins old libraries, so it
#    lives in its own virtualenv, built with PIP_CONSTRAINT cython<3 (PyYAML 5 does not build with 3).
CHROMIUM := /usr/bin/chromium
COMPOSE_VENV := .venv-compose
COMPOSE_STAMP := $(COMPOSE_VENV)/.knexa-installed

.PHONY: explorer compose-venv compose-config

$(CHROMIUM):
	apt-get update && apt-get install -y chromium

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

pytest: $(CHROMIUM) $(COMPOSE_STAMP)
