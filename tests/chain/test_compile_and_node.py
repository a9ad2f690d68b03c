"""The committed artifacts match the sources; Anvil starts, persists state, and stops cleanly."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from chain.anvil import AnvilNode
from chain.client import connect
from chain.compiler import collect_sources, compile_contracts, load_artifact
from chain.deploy import Deployment, verify_deployment
from chain.devchain import DevChain


def test_committed_artifact_matches_a_fresh_compile() -> None:
    committed = load_artifact("KnexaMarket")
    fresh = compile_contracts()["KnexaMarket"]
    assert fresh.to_json() == committed.to_json()


def test_artifact_records_the_current_sources() -> None:
    committed = load_artifact("KnexaMarket")
    current = {unit: hashlib.sha256(text.encode()).hexdigest() for unit, text in collect_sources().items()}
    assert committed.source_digests == current
    assert "src/OrganizationRegistry.sol" in current
    assert any(unit.startswith("@openzeppelin/contracts/access/") for unit in current)


def test_anvil_runs_with_pruned_history_and_leaves_no_process() -> None:
    node = AnvilNode()
    assert "--prune-history" in node.command()
    with node:
        assert connect(node.rpc_url).eth.chain_id == 31337
        assert node._process is not None
        pid = node._process.pid
    assert not node.running
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def test_anvil_block_gas_limit_can_be_raised() -> None:
    """The gas benchmark raises the node's block gas limit to measure calls over 30M gas."""
    assert "--gas-limit" not in AnvilNode().command()
    with AnvilNode(gas_limit=60_000_000) as node:
        assert connect(node.rpc_url).eth.get_block("latest")["gasLimit"] == 60_000_000
    assert not node.running


def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "anvil-state.json"
    node = AnvilNode(state_file=state)
    with DevChain(node=node.start()) as chain:
        deployment = chain.deployment
    node.stop()
    assert state.exists()
    assert os.path.getsize(state) > 0
    manifest = tmp_path / "deployment.json"
    deployment.save(manifest)
    with AnvilNode(port=node.port, state_file=state) as restarted:
        client = verify_deployment(connect(restarted.rpc_url), Deployment.load(manifest))
        assert client.next_round_id() == 1
