"""The `ContentStore` interface, shared by the local directory store and the IPFS node client.

Both implementations address content exactly as `ipfs add` does (same chunking, same DAG, same
CID version), so an object put into one can be fetched from the other under the same CID.
Every `get` verifies the bytes against the CID before returning them; a failed operation leaves
the store as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from exchange.cid import CidVersion

DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB: the largest object `get` returns unless told otherwise


@runtime_checkable
class ContentStore(Protocol):
    """Put bytes, get them back by CID (verified), and keep them with pins."""

    cid_version: CidVersion

    def put(self, data: bytes, *, pin: bool = True, expected_cid: str | None = None) -> str:
        """Store `data` and return its CID; with `expected_cid`, refuse (and store nothing) on mismatch."""
        ...

    def put_file(self, path: Path, *, pin: bool = True) -> str:
        """Store a file's bytes without reading it into memory at once; return its CID."""
        ...

    def get(self, cid: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
        """The bytes addressed by `cid`, checked against it. Raises `NotFoundError`, `CidMismatchError`,
        `OversizedError` (more than `max_bytes`)."""
        ...

    def has(self, cid: str) -> bool:
        """Whether the store holds the object now (no network look-up)."""
        ...

    def pin(self, cid: str) -> None:
        """Keep the object (it must be held already)."""
        ...

    def unpin(self, cid: str) -> None:
        """Let garbage collection drop the object; unpinning an object that is not pinned is an error."""
        ...

    def pins(self) -> set[str]:
        """CIDs pinned directly."""
        ...
