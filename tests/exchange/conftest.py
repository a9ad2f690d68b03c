"""Fixtures of the exchange tests: stores on top of the session's real IPFS node (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exchange.ipfs import IpfsStore
from exchange.local import LocalStore
from exchange.node import IpfsNode


@pytest.fixture
def ipfs_store(ipfs_node: IpfsNode) -> Iterator[IpfsStore]:
    """A CIDv1 client of the session's node; short timeouts so that "not found" answers quickly."""
    with IpfsStore(ipfs_node.api_url, timeout_s=5.0, has_timeout_s=0.5) as store:
        yield store


@pytest.fixture
def ipfs_store_v0(ipfs_node: IpfsNode) -> Iterator[IpfsStore]:
    with IpfsStore(ipfs_node.api_url, cid_version=0, timeout_s=5.0, has_timeout_s=0.5) as store:
        yield store


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")
