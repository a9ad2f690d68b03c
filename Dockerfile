# syntax=docker/dockerfile:1
# One image for every knexa service (chain tools, deployer, explorer, matchmaker, agents).
# Build: docker build -t knexa:local .      (docker compose builds it for you)
# Base images are pinned by tag; pin by digest too where your registry policy requires it.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
ARG NODE_IMAGE=node:20.18.1-bookworm-slim

# --- stage 1: the npm tools (Foundry's anvil/cast/forge 1.7.1, solcjs 0.8.37, OpenZeppelin 5.7.0) ---
FROM ${NODE_IMAGE} AS tools
WORKDIR /build/tools
COPY tools/package.json tools/package-lock.json tools/solc-shim.js ./
RUN npm ci --no-audit --no-fund --loglevel=error \
    && rm -rf node_modules/@foundry-rs/forge-linux-amd64 /root/.npm

# --- stage 2: the Python environment, built against the sources ---
FROM ${PYTHON_IMAGE} AS python
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
# extras to install: "" for chain/explorer/matchmaker services, "ml" for organization agents
ARG KNEXA_EXTRAS=""
# an extra package index for torch's CPU-only wheels (set it to keep the image small; without it pip
# takes the default build of torch==2.13.0)
ARG TORCH_INDEX_URL=""
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY pyproject.toml README.md ./
COPY knexa ./knexa
COPY chain ./chain
COPY exchange ./exchange
COPY matchmaker ./matchmaker
COPY agent ./agent
COPY explorer ./explorer
COPY contracts ./contracts
# torch first and pinned when the ml extra is wanted, as the Makefile does
RUN if [ -n "$KNEXA_EXTRAS" ]; then pip install torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}; fi \
    && pip install -e ".${KNEXA_EXTRAS:+[$KNEXA_EXTRAS]}"

# --- stage 3: the runtime, non-root ---
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KNEXA_TOOLS_DIR=/app/tools \
    KNEXA_MANIFEST=/shared/deployment.json
RUN groupadd --system --gid 10001 knexa \
    && useradd --system --uid 10001 --gid knexa --home-dir /home/knexa --create-home knexa \
    && mkdir -p /data /shared \
    && chown knexa:knexa /data /shared
COPY --from=python /opt/venv /opt/venv
COPY --from=python /app /app
COPY --from=tools /build/tools /app/tools
WORKDIR /app
USER knexa
VOLUME ["/data", "/shared"]
# the explorer's port; anvil listens on 8545. Health checks are per service, in docker-compose.yml.
EXPOSE 8000 8545
ENTRYPOINT []
CMD ["knexa", "--help"]
