"""Compile the Solidity sources with py-solc-x's `compile_standard`, reproducibly.

Sources are handed to the compiler by content under stable, machine-independent unit names
(`src/KnexaMarket.sol`, `@openzeppelin/contracts/...`), so the metadata hash embedded in the
bytecode is the same on every machine: the committed artifacts can be checked against a fresh
compile. The compiler is a native solc installed by py-solc-x when one exists, otherwise solcjs
(npm `solc`) behind `tools/solc-shim.js` (see docs/toolchain.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import solcx
from packaging.version import Version
from solcx.install import get_executable

from chain.paths import ARTIFACTS_DIR, CONTRACTS_DIR, node_modules, solc_shim

SOLC_VERSION = "0.8.37"
CONTRACT_SOURCES = ("src/KnexaMarket.sol",)
DEPLOYABLE_CONTRACTS = ("KnexaMarket",)
COMPILER_SETTINGS: dict[str, Any] = {
    "evmVersion": "cancun",
    "viaIR": True,
    "optimizer": {"enabled": True, "runs": 200},
    "metadata": {"bytecodeHash": "ipfs"},
    "outputSelection": {
        "*": {
            "*": [
                "abi",
                "evm.bytecode.object",
                "evm.deployedBytecode.object",
                "metadata",
                "devdoc",
                "userdoc",
            ]
        }
    },
}

_IMPORT_PATTERN = re.compile(r'^\s*import\s+(?:[^"\']*\sfrom\s+)?["\']([^"\']+)["\']\s*;', re.MULTILINE)


class CompilerUnavailableError(RuntimeError):
    """Neither a native solc nor the solcjs shim can be used."""


@dataclass(frozen=True)
class Artifact:
    """One compiled contract, as committed under `contracts/artifacts/`."""

    contract_name: str
    source_name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    metadata: str
    compiler_version: str
    source_digests: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "contractName": self.contract_name,
            "sourceName": self.source_name,
            "compiler": {"version": self.compiler_version, "settings": _settings_without_selection()},
            "abi": self.abi,
            "bytecode": self.bytecode,
            "deployedBytecode": self.deployed_bytecode,
            "metadata": self.metadata,
            "sourceDigests": self.source_digests,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Artifact:
        return cls(
            contract_name=data["contractName"],
            source_name=data["sourceName"],
            abi=data["abi"],
            bytecode=data["bytecode"],
            deployed_bytecode=data["deployedBytecode"],
            metadata=data["metadata"],
            compiler_version=data["compiler"]["version"],
            source_digests=data["sourceDigests"],
        )

    @property
    def bytecode_digest(self) -> str:
        """sha256 of the creation bytecode (recorded in deployment manifests)."""
        return hashlib.sha256(bytes.fromhex(self.bytecode.removeprefix("0x"))).hexdigest()


def _settings_without_selection() -> dict[str, Any]:
    return {key: value for key, value in COMPILER_SETTINGS.items() if key != "outputSelection"}


def _read_unit(unit_name: str) -> str:
    """Read a source unit by its unit name: project sources from contracts/, libraries from npm."""
    path = node_modules() / unit_name if unit_name.startswith("@") else CONTRACTS_DIR / unit_name
    if not path.is_file():
        raise FileNotFoundError(f"Solidity source {unit_name!r} not found at {path} (run `make bootstrap`)")
    return path.read_text(encoding="utf-8")


def _resolve_import(importer: str, imported: str) -> str:
    if imported.startswith("./") or imported.startswith("../"):
        return posixpath.normpath(posixpath.join(posixpath.dirname(importer), imported))
    return imported


def collect_sources(roots: tuple[str, ...] = CONTRACT_SOURCES) -> dict[str, str]:
    """The transitive closure of `roots` under their imports, as {unit name: source text}."""
    sources: dict[str, str] = {}
    pending = list(roots)
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        text = _read_unit(unit)
        sources[unit] = text
        pending.extend(_resolve_import(unit, imported) for imported in _IMPORT_PATTERN.findall(text))
    return dict(sorted(sources.items()))


def solc_binary() -> Path:
    """The compiler to use: $KNEXA_SOLC, else a native solc installed by py-solc-x, else the solcjs shim."""
    override = os.environ.get("KNEXA_SOLC")
    if override:
        return Path(override)
    if Version(SOLC_VERSION) in solcx.get_installed_solc_versions():
        return Path(get_executable(SOLC_VERSION))
    shim = solc_shim()
    if not (shim.exists() and (node_modules() / "solc").exists()):
        raise CompilerUnavailableError(
            f"no solc {SOLC_VERSION}: run `make bootstrap` (installs solcjs) or set KNEXA_SOLC"
        )
    return shim


def compile_contracts(binary: Path | None = None) -> dict[str, Artifact]:
    """Compile the project's contracts from source; returns the deployable ones by name."""
    sources = collect_sources()
    standard_input = {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in sources.items()},
        "settings": COMPILER_SETTINGS,
    }
    output = solcx.compile_standard(standard_input, solc_binary=binary or solc_binary())
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise RuntimeError("solc failed:\n" + "\n".join(e.get("formattedMessage", str(e)) for e in errors))
    digests = {unit: hashlib.sha256(text.encode()).hexdigest() for unit, text in sources.items()}
    version = json.loads(next(iter(output["contracts"][CONTRACT_SOURCES[0]].values()))["metadata"])[
        "compiler"
    ]["version"]
    artifacts: dict[str, Artifact] = {}
    for source_name, contracts in output["contracts"].items():
        for name, compiled in contracts.items():
            if name not in DEPLOYABLE_CONTRACTS:
                continue
            artifacts[name] = Artifact(
                contract_name=name,
                source_name=source_name,
                abi=compiled["abi"],
                bytecode="0x" + compiled["evm"]["bytecode"]["object"],
                deployed_bytecode="0x" + compiled["evm"]["deployedBytecode"]["object"],
                metadata=compiled["metadata"],
                compiler_version=version,
                source_digests=digests,
            )
    return artifacts


def artifact_path(name: str, directory: Path = ARTIFACTS_DIR) -> Path:
    return directory / f"{name}.json"


def write_artifacts(artifacts: dict[str, Artifact], directory: Path = ARTIFACTS_DIR) -> list[Path]:
    """Write artifacts as stable, pretty JSON (one file per contract)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, artifact in sorted(artifacts.items()):
        path = artifact_path(name, directory)
        path.write_text(json.dumps(artifact.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def load_artifact(name: str = "KnexaMarket", directory: Path = ARTIFACTS_DIR) -> Artifact:
    """Load a committed artifact (no compiler needed)."""
    path = artifact_path(name, directory)
    if not path.exists():
        raise FileNotFoundError(f"artifact {path} missing: run `make artifacts`")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return Artifact.from_json(data)
