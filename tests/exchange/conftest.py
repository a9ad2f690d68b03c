"""Fixtures of the exchange tests: a real IPFS node for the session, and stores on top of it.

The node is Kubo when an `ipfs` binary is on PATH, else the project-local js-ipfs (`make ipfs`,
which `make pytest` runs first). Without either, tests marked `ipfs` fail with instructions rather
than skip, so CI cannot pass without having exercised a real node.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchange.ipfs import IpfsStore
from exchange.local import LocalStore
from exchange.node import IpfsNode, IpfsNotInstalledError, find_ipfs


@pytest.fixture(scope="session")
def ipfs_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IpfsNode]:
    """A real IPFS daemon, offline on free loopback ports, its repo in a temporary folder."""
    try:
        implementation = find_ipfs()
    except IpfsNotInstalledError as error:
        missing = str(error)
    else:
        missing = ""
    if missing:
        where = "CI installs it through mk/ipfs.mk" if os.environ.get("CI") == "true" else "then re-run"
        pytest.fail(f"{missing} ({where}; or deselect these tests with -m 'not ipfs')", pytrace=False)
    node = IpfsNode(tmp_path_factory.mktemp("ipfs-node"), implementation)
    node.start(timeout_s=120)
    try:
        yield node
    finally:
        node.stop()


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
