"""Where the project's files and project-local tools live.

Every location can be overridden by an environment variable, so that an installed copy (a container
image, a CI runner) can point at its own tools.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = REPO_ROOT / "contracts"
ARTIFACTS_DIR = CONTRACTS_DIR / "artifacts"
DEFAULT_STATE_DIR = REPO_ROOT / ".knexa"


def tools_dir() -> Path:
    """The folder holding the project-local npm tools (`tools/node_modules`)."""
    return Path(os.environ.get("KNEXA_TOOLS_DIR", REPO_ROOT / "tools"))


def _foundry_binary(name: str) -> Path:
    override = os.environ.get(f"KNEXA_{name.upper()}")
    if override:
        return Path(override)
    local = tools_dir() / "node_modules" / "@foundry-rs" / f"{name}-linux-amd64" / "bin" / name
    if local.exists():
        return local
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    raise FileNotFoundError(
        f"{name} not found: run `make bootstrap` (installs Foundry into tools/node_modules) "
        f"or set KNEXA_{name.upper()}"
    )


def anvil_binary() -> Path:
    """Path to the anvil executable."""
    return _foundry_binary("anvil")


def forge_binary() -> Path:
    """Path to the forge executable."""
    return _foundry_binary("forge")


def solc_shim() -> Path:
    """Path to the node shim that gives solcjs native solc's command-line interface."""
    return tools_dir() / "solc-shim.js"


def node_modules() -> Path:
    """The npm folder where `@openzeppelin/contracts` lives."""
    return tools_dir() / "node_modules"
