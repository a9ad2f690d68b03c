"""Opening the content store a user names: a local directory or an IPFS node's RPC API URL."""

from __future__ import annotations

from pathlib import Path

from exchange.cid import CidVersion
from exchange.ipfs import IpfsStore
from exchange.local import LocalStore


def is_ipfs_api(spec: str) -> bool:
    """True when a `--store` value names an IPFS RPC API rather than a directory."""
    return spec.startswith(("http://", "https://"))


def open_store(
    spec: str,
    cid_version: CidVersion = 1,
    timeout_s: float = 10.0,
    *,
    retries: int = 3,
    has_timeout_s: float = 1.0,
) -> LocalStore | IpfsStore:
    """The store a `--store` value names: `http(s)://...` is an IPFS RPC API, anything else a directory.

    `retries` and `has_timeout_s` apply to an IPFS store only (a read-only viewer wants fewer retries).
    """
    if is_ipfs_api(spec):
        return IpfsStore(
            spec, cid_version=cid_version, timeout_s=timeout_s, retries=retries, has_timeout_s=has_timeout_s
        )
    return LocalStore(Path(spec), cid_version=cid_version)
