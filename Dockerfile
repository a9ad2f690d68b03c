# syntax=docker/dockerfile:1
# One image for every knexa service (chain tools, deployer, explorer, matchmaker, organizations),
# plus an optional js-ipfs image (target `ipfs`) that stands in for Kubo where Kubo cannot be pulled.
#   docker build -t knexa:local .                      (docker compose builds it for you)
#   docker build --target ipfs -t knexa-ipfs:local .   (only docker-compose.jsipfs.yml uses it)
#
# Build arguments:
#   BASE_IMAGE       a Debian bookworm image (pinned by tag; pin by digest too where your policy wants it).
#                    `make compose-smoke` passes a local one made with debootstrap.
#   KNEXA_EXTRAS     "ml" (default: torch, transformers and peft for the organizations' real learners)
#                    or "" for an image that only runs the chain, explorer and matchmaker services.
#   TORCH_INDEX_URL  where torch comes from: PyTorch's CPU wheel index by default (about 200 MB);
#                    https://download.pytorch.org/whl/cu126 for CUDA; "" for PyPI's default build
#                    (CUDA on x86-64 Linux: several GB of nvidia wheels).
#   EXTRA_CA_BUNDLE  the name of a PEM file in docker/certs/ (git-ignored) to trust on top of Debian's
#                    CAs, at build and at run time: for networks that intercept TLS.
# Wheels placed in docker/wheels/ (git-ignored) are offered to pip first, e.g. a torch wheel already
# downloaded, so that a build needs no second download of it.

ARG BASE_IMAGE=debian:12.8-slim

# --- the base of every stage: Debian's Python 3.11, CA certificates (plus an extra bundle) ---
FROM ${BASE_IMAGE} AS base
ARG EXTRA_CA_BUNDLE=""
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
COPY docker/certs/ /tmp/knexa-certs/
# python3 is also the interpreter the sandbox runs generated code with (/usr/bin/python3);
# bubblewrap is there for sandboxes that isolate without root.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv bubblewrap \
    && if [ -n "$EXTRA_CA_BUNDLE" ]; then \
         cp "/tmp/knexa-certs/$EXTRA_CA_BUNDLE" /usr/local/share/ca-certificates/knexa-extra.crt \
         && update-ca-certificates; \
       fi \
    && rm -rf /var/lib/apt/lists/* /tmp/knexa-certs
# pip (certifi's list otherwise), node and Python's ssl read the system bundle, which holds the extra CAs
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt

# --- node and npm, for the tools and the js-ipfs image ---
FROM base AS node
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*

# --- the npm tools: Foundry's anvil and cast 1.7.1 for this machine's architecture ---
# The lockfile names the linux-amd64 packages, which npm refuses on arm64 (EBADPLATFORM); on arm64
# the lockfile's tree is installed with --force and Foundry's linux-arm64 packages of the same
# version replace them. bin/anvil and bin/cast point at the native binaries either way.
FROM node AS tools
WORKDIR /build/tools
COPY tools/package.json tools/package-lock.json tools/solc-shim.js ./
RUN set -e; \
    case "$(dpkg --print-architecture)" in \
      amd64) foundry=linux-amd64; npm ci --no-audit --no-fund --loglevel=error ;; \
      arm64) foundry=linux-arm64; npm ci --force --no-audit --no-fund --loglevel=error; \
             npm install --no-save --force --no-audit --no-fund --loglevel=error \
               @foundry-rs/anvil-linux-arm64@1.7.1 @foundry-rs/cast-linux-arm64@1.7.1; \
             rm -rf node_modules/@foundry-rs/*-linux-amd64 ;; \
      *) echo "Foundry publishes no npm binaries for $(dpkg --print-architecture)" >&2; exit 1 ;; \
    esac; \
    rm -rf node_modules/@foundry-rs/forge-* /root/.npm; \
    mkdir -p bin; \
    for tool in anvil cast; do ln -s "../node_modules/@foundry-rs/$tool-$foundry/bin/$tool" "bin/$tool"; done; \
    bin/anvil --version

# --- the Python environment, built against the sources ---
FROM base AS python
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
ARG KNEXA_EXTRAS="ml"
ARG TORCH_INDEX_URL="https://download.pytorch.org/whl/cpu"
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY docker/wheels/ /tmp/wheels/
# torch first and pinned, from the chosen index (the project's own pin then finds it installed)
RUN case ",$KNEXA_EXTRAS," in \
      *,ml,*) pip install --find-links /tmp/wheels ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} \
                torch==2.13.0 ;; \
    esac
WORKDIR /app
COPY pyproject.toml README.md ./
COPY knexa ./knexa
COPY clikit ./clikit
COPY chain ./chain
COPY exchange ./exchange
COPY market ./market
COPY matchmaker ./matchmaker
COPY agent ./agent
COPY org ./org
COPY sim ./sim
COPY explorer ./explorer
COPY contracts ./contracts
RUN pip install --find-links /tmp/wheels -e ".${KNEXA_EXTRAS:+[$KNEXA_EXTRAS]}" \
    && rm -rf /tmp/wheels

# --- js-ipfs 0.66 (the Kubo RPC API), offline, for engines that cannot pull Kubo's image ---
FROM node AS ipfs
WORKDIR /opt/ipfs
COPY tools/ipfs/package.json tools/ipfs/package-lock.json tools/ipfs/polyfill.cjs ./
# `npm install`, not `npm ci`: the lockfile misses an optional git dependency of js-ipfs
RUN npm install --no-audit --no-fund --loglevel=error && rm -rf /root/.npm
COPY docker/jsipfs-config.json docker/jsipfs-start.sh ./
RUN groupadd --system --gid 10001 knexa \
    && useradd --system --uid 10001 --gid knexa --home-dir /home/knexa --create-home knexa \
    && mkdir -p /data/ipfs \
    && chown knexa:knexa /data/ipfs
USER knexa
EXPOSE 5001
ENTRYPOINT []
CMD ["/opt/ipfs/jsipfs-start.sh"]

# --- the runtime, non-root (the last stage: what a build without --target gives) ---
FROM base AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KNEXA_TOOLS_DIR=/app/tools \
    KNEXA_MANIFEST=/shared/deployment.json \
    KNEXA_CACHE=/cache
# Every mount point of docker-compose.yml exists here, owned by knexa: Docker creates a new named
# volume from the image's directory (owner included), so the non-root user can write to it.
# /cache holds the learners' tokenizer and pretrained zoo; /app/.knexa is the default home of
# `knexa` commands run without --home/--manifest.
RUN groupadd --system --gid 10001 knexa \
    && useradd --system --uid 10001 --gid knexa --home-dir /home/knexa --create-home knexa \
    && mkdir -p /data /shared /org /cache /app/.knexa \
    && chown knexa:knexa /data /shared /org /cache /app/.knexa
COPY --from=python /opt/venv /opt/venv
COPY --from=python /app /app
COPY --from=tools /build/tools /app/tools
WORKDIR /app
USER knexa
# the explorer's port, the matchmaker's and anvil's. Health checks are per service, in docker-compose.yml.
EXPOSE 8000 8600 8545
ENTRYPOINT []
CMD ["knexa", "--help"]

