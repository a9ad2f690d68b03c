# `make compose-smoke`: the compose stack for real, under podman (runc) on a local Debian base.
#  - no container registry can be reached here, so the base image is made with debootstrap and
#    cached in .knexa/compose/ (git-ignored); Kubo and Otterscan cannot be pulled, so js-ipfs from
#    our Dockerfile stands in for Kubo (docker-compose.jsipfs.yml) and Otterscan is left out;
#  - podman's default runtime (crun) fails on these hosts' hybrid cgroups: runc, with explicit
#    ulimits, through a containers.conf of our own (CONTAINERS_CONF);
#  - registries are reached through an intercepting proxy: the host's CA bundle goes into the build
#    (EXTRA_CA_BUNDLE), and the host's torch CPU wheel into docker/wheels/ (no second download).
# Needs root and `apt-get install -y podman runc debootstrap`. podman-compose lives in its own venv.
SMOKE_DIR := .knexa/compose
SMOKE_BASE_TAR := $(SMOKE_DIR)/debian-bookworm-minbase.tar
SMOKE_BASE_IMAGE := localhost/knexa-debian:bookworm-minbase
SMOKE_CONF := $(SMOKE_DIR)/containers.conf
PODMAN_COMPOSE_VENV := .venv-podman-compose
PODMAN_COMPOSE := $(PODMAN_COMPOSE_VENV)/bin/podman-compose
HOST_CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
SMOKE_ENV := CONTAINERS_CONF=$(abspath $(SMOKE_CONF))
# A torch wheel to feed into the build: by default the one in the wheel folder pip is configured
# with, if any; without one the build downloads torch from SMOKE_TORCH_INDEX_URL (PyTorch's CPU index).
SMOKE_TORCH_WHEEL ?= $(firstword $(wildcard $(addsuffix /torch-2.13.0*.whl,$(shell pip config get global.find-links 2>/dev/null))))
SMOKE_TORCH_INDEX_URL ?= $(if $(SMOKE_TORCH_WHEEL),,https://download.pytorch.org/whl/cpu)

.PHONY: compose-smoke compose-smoke-base compose-smoke-images

$(SMOKE_BASE_TAR):
	@command -v debootstrap > /dev/null || { echo "compose-smoke needs debootstrap: apt-get install -y podman runc debootstrap" >&2; exit 1; }
	rm -rf $(SMOKE_DIR)/rootfs && mkdir -p $(SMOKE_DIR)
	debootstrap --variant=minbase bookworm $(SMOKE_DIR)/rootfs http://deb.debian.org/debian > $(SMOKE_DIR)/debootstrap.log
	tar -C $(SMOKE_DIR)/rootfs -c . > $@.tmp && mv $@.tmp $@
	rm -rf $(SMOKE_DIR)/rootfs

$(SMOKE_CONF): mk/compose.mk
	@mkdir -p $(SMOKE_DIR)
	printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n[engine]\nruntime = "runc"\n' > $@

$(PODMAN_COMPOSE):
	@test -x $(PODMAN_COMPOSE_VENV)/bin/python || $(PYTHON) -m venv $(PODMAN_COMPOSE_VENV)
	$(PODMAN_COMPOSE_VENV)/bin/python -m pip install --quiet podman-compose==1.6.0

compose-smoke-base: $(SMOKE_BASE_TAR) $(SMOKE_CONF)  ## the local Debian base image for compose-smoke (debootstrap, cached)
	@command -v podman > /dev/null || { echo "compose-smoke needs podman: apt-get install -y podman runc debootstrap" >&2; exit 1; }
	$(SMOKE_ENV) podman image exists $(SMOKE_BASE_IMAGE) || $(SMOKE_ENV) podman import $(SMOKE_BASE_TAR) $(SMOKE_BASE_IMAGE)

# One build at a time (2 shared cores): the knexa image, then the js-ipfs image (shares its base layers).
compose-smoke-images: compose-smoke-base
	cp $(HOST_CA_BUNDLE) docker/certs/host-ca.pem
	$(if $(SMOKE_TORCH_WHEEL),cp $(SMOKE_TORCH_WHEEL) docker/wheels/)
	$(SMOKE_ENV) podman build --build-arg BASE_IMAGE=$(SMOKE_BASE_IMAGE) --build-arg EXTRA_CA_BUNDLE=host-ca.pem \
	  --build-arg TORCH_INDEX_URL=$(SMOKE_TORCH_INDEX_URL) -t knexa:local .
	$(SMOKE_ENV) podman build --build-arg BASE_IMAGE=$(SMOKE_BASE_IMAGE) --build-arg EXTRA_CA_BUNDLE=host-ca.pem \
	  --target ipfs -t knexa-ipfs:local .

compose-smoke: compose-smoke-images $(PODMAN_COMPOSE) $(PY_STAMP)  ## the compose stack for real (podman): 2 rounds, replay, teardown
	$(SMOKE_ENV) $(BIN)/python docker/compose_smoke.py --podman-compose $(PODMAN_COMPOSE)
