"""Default paths and the environment variables that override them: written once, used everywhere."""

from __future__ import annotations

from pathlib import Path

#: Where a local market keeps its files (deployment manifest, local content store, organizations).
DEFAULT_STATE_DIR = Path(".knexa")
DEFAULT_MANIFEST = DEFAULT_STATE_DIR / "deployment.json"
DEFAULT_STORE = str(DEFAULT_STATE_DIR / "store")
DEFAULT_ORGS_DIR = DEFAULT_STATE_DIR / "orgs"
DEFAULT_RPC_URL = "http://127.0.0.1:8545"

RPC_ENV = "KNEXA_RPC"
STORE_ENV = "KNEXA_STORE"
MANIFEST_ENV = "KNEXA_MANIFEST"
