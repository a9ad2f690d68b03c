"""Shared fixtures: a real Anvil node and a real IPFS node per test session, a fresh market per test.

The IPFS node is Kubo when an `ipfs` binary is on PATH, else the project-local js-ipfs (`make ipfs`,
which `make pytest` runs first). Without either, tests that need it fail with instructions rather
than skip, so CI cannot pass without having exercised a real node.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.anvil import AnvilNode
from chain.devchain import DevChain
from exchange.node import IpfsNode, IpfsNotInstalledError, find_ipfs


@pytest.fixture(scope="session")
def anvil_node() -> Iterator[AnvilNode]:
    """One Anvil process on a free loopback port for the whole session (stopped at the end)."""
    with AnvilNode() as node:
        yield node


@pytest.fixture
def dev_chain(anvil_node: AnvilNode) -> Iterator[DevChain]:
    """A freshly deployed KnexaMarket with the default parameters on the session's Anvil."""
    with DevChain(node=anvil_node) as chain:
        yield chain


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


@pytest.fixture(scope="session")
def zoo_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One model cache (`KNEXA_CACHE`) for the whole session, inherited by `knexa` subprocesses, so
    the pretrained zoo is built once per session (or reused from the caller's KNEXA_CACHE)."""
    old = os.environ.get("KNEXA_CACHE")
    if old is None:
        os.environ["KNEXA_CACHE"] = str(tmp_path_factory.getbasetemp() / "knexa-cache")
    yield Path(os.environ["KNEXA_CACHE"])
    if old is None:
        os.environ.pop("KNEXA_CACHE", None)
