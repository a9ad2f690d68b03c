"""A Sourcify-format file tree for the deployed market, so a block explorer can decode it offline.

Otterscan (and other tools) look contracts up in a Sourcify repository by URL:

    <root>/contracts/full_match/<chainId>/<address>/metadata.json
    <root>/contracts/full_match/<chainId>/<address>/sources/<source path>

"RepositoryV1" names a source by its unit path with `@` and `:` replaced by `_` (Otterscan asks for
`_openzeppelin/contracts/...`); "RepositoryV2" names it by the keccak256 of the path. Both are
answered. The metadata is the compiler's own metadata string from the committed artifact, byte for
byte, so its IPFS hash is the one solc embedded in the deployed bytecode's CBOR trailer: anyone can
check that the sources belong to the code at the address (`metadata_hash_from_code`). Sources are
served only when their keccak256 equals the value the metadata records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from web3 import Web3

from chain.compiler import Artifact, collect_sources, load_artifact


def v1_name(unit: str) -> str:
    """The file name a RepositoryV1 tree uses for a source unit."""
    return unit.replace("@", "_").replace(":", "_")


def v2_name(unit: str) -> str:
    """The file name a RepositoryV2 tree uses for a source unit: keccak256 of its path."""
    return Web3.keccak(text=unit).hex().removeprefix("0x")


@dataclass(frozen=True)
class SourcifyTree:
    metadata: str
    sources: dict[str, str]  # unit name -> text, only those whose keccak256 matches the metadata
    missing: tuple[str, ...]  # units the metadata names that could not be served

    def source(self, requested: str) -> str | None:
        """The text of the unit a V1 or V2 request names, or None."""
        wanted = requested.removeprefix("/").lower().removeprefix("0x")
        for unit, text in self.sources.items():
            if requested in (unit, v1_name(unit)) or wanted == v2_name(unit):
                return text
        return None


@cache
def market_tree() -> SourcifyTree:
    """The tree of the committed KnexaMarket artifact (sources read once from disk)."""
    return build_tree(load_artifact("KnexaMarket"))


def build_tree(artifact: Artifact) -> SourcifyTree:
    metadata = json.loads(artifact.metadata)
    recorded: dict[str, str] = {unit: entry["keccak256"] for unit, entry in metadata["sources"].items()}
    try:
        available = collect_sources()
    except FileNotFoundError:
        available = {}
    sources: dict[str, str] = {}
    for unit, digest in recorded.items():
        text = available.get(unit)
        if text is not None and Web3.keccak(text=text).to_0x_hex() == digest:
            sources[unit] = text
    missing = tuple(sorted(set(recorded) - set(sources)))
    return SourcifyTree(metadata=artifact.metadata, sources=sources, missing=missing)


def metadata_hash_from_code(code: bytes) -> bytes | None:
    """The `ipfs` multihash solc appended to runtime code (CBOR trailer), or None if absent.

    The last two bytes give the CBOR length; the map holds `ipfs` -> 34-byte multihash (0x1220...).
    """
    if len(code) < 2:
        return None
    length = int.from_bytes(code[-2:], "big")
    if length + 2 > len(code):
        return None
    trailer = code[-2 - length : -2]
    marker = b"\x64ipfs\x58\x22"  # text(4) "ipfs", bytes(34)
    position = trailer.find(marker)
    if position < 0:
        return None
    start = position + len(marker)
    return trailer[start : start + 34]
