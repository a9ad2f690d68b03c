"""Fixtures of the explorer tests: a finished round on the session's Anvil, and explorer apps over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.anvil import AnvilNode
from chain.devchain import DevChain
from tests.explorer.scenario import Scenario, finished_rounds


@pytest.fixture(scope="module")
def round_chain(
    anvil_node: AnvilNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DevChain, Scenario]]:
    """A fresh market with one finished round (shared by the tests of a module: they only read)."""
    with DevChain(node=anvil_node) as chain:
        yield chain, finished_rounds(chain, tmp_path_factory.mktemp("round"))


@pytest.fixture(scope="module")
def tampered_chain(
    anvil_node: AnvilNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DevChain, Scenario]]:
    """Like `round_chain`, but the decision record chose other pairs than the chain assigned."""
    with DevChain(node=anvil_node) as chain:
        yield chain, finished_rounds(chain, tmp_path_factory.mktemp("tampered"), rounds=1, tampered=True)


@pytest.fixture
def empty_manifest(dev_chain: DevChain, tmp_path: Path) -> Path:
    manifest = tmp_path / "deployment.json"
    dev_chain.deployment.save(manifest)
    return manifest


@pytest.fixture(scope="module")
def disputed_chain(
    anvil_node: AnvilNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DevChain, Scenario]]:
    """Like `round_chain`, but a student of round 1 disputed its bundle and won."""
    with DevChain(node=anvil_node) as chain:
        yield chain, finished_rounds(chain, tmp_path_factory.mktemp("disputed"), rounds=1, disputed=True)
