"""Opening the content store a user names: a local directory or an IPFS node's RPC API URL."""

from __future__ import annotations

from pathlib import Path

from exchange.cid import CidVersion
from exchange.ipfs import IpfsStore
from exchange.local import LocalStore


def open_store(spec: str, cid_version: CidVersion = 1, timeout_s: float = 10.0) -> LocalStore | IpfsStore:
    """The store a `--store` value names: `http(s)://...` is an IPFS RPC API, anything else a directory."""
    if spec.startswith(("http://", "https://")):
        return IpfsStore(spec, cid_version=cid_version, timeout_s=timeout_s)
    return LocalStore(Path(spec), cid_version=cid_version)
