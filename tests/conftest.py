"""Shared fixtures: a real Anvil node per test session, a fresh market deployment per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chain.anvil import AnvilNode
from chain.devchain import DevChain


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
