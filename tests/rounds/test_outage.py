"""`knexa matchmaker run` and three `knexa org join` processes outlive a chain outage (Anvil stopped
and restarted on the same port from its --state file) and an IPFS outage mid-round, and resume:
the rounds after each outage are played and replay exactly."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chain.anvil import AnvilNode
from chain.devchain import DevChain
from exchange.ipfs import IpfsStore
from exchange.node import IpfsNode, find_ipfs
from knexa.process_demo import Processes
from matchmaker.audit import MATCH, verify_rounds
from tests.org.conftest import init_and_register_through_cli
from tests.rounds.market_processes import start_market, wait_for

ROUND_BLOCKS = 16


def _wait(condition: Callable[[], bool], what: str, logs: Path, timeout_s: float = 180.0) -> None:
    wait_for(condition, what, logs, timeout_s, poll_s=0.5, tail_chars=1500)


@pytest.mark.ipfs
def test_processes_survive_chain_and_store_outages(tmp_path: Path) -> None:
    node = AnvilNode(state_file=tmp_path / "anvil-state.json", block_time=0.5)
    ipfs = IpfsNode(tmp_path / "ipfs", find_ipfs())
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = Processes(logs)
    node.start()
    try:
        ipfs.start(timeout_s=120)
        chain = DevChain(node=node).start()
        homes = {f"org-{index:05d}": tmp_path / f"org-{index}" for index in range(3)}
        init_and_register_through_cli(CliRunner(), chain, ipfs.api_url, homes)
        manifest = tmp_path / "deployment.json"
        start_market(processes, node.rpc_url, manifest, ipfs.api_url, homes, ROUND_BLOCKS)
        reader = chain.client()
        deploy_block = chain.deployment.deploy_block

        def finalized(count: int) -> Callable[[], bool]:
            return lambda: len(chain.events().read(deploy_block, names=["RoundFinalized"])) >= count

        def all_alive() -> None:
            for name, process in processes.children.items():
                assert process.poll() is None, f"{name} exited: {(logs / f'{name}.log').read_text()[-3000:]}"

        _wait(finalized(1), "round 1", logs)
        node.stop()  # the chain is down (SIGTERM: Anvil writes its state file)
        time.sleep(6)
        all_alive()
        node.start()  # back on the same port, from its state file
        _wait(finalized(2), "round 2 after the chain outage", logs)
        all_alive()

        _wait(lambda: reader.open_round_id() == 3, "round 3 to open", logs)
        ipfs.stop(remove=False)  # the store is down mid-round
        time.sleep(4)
        all_alive()
        ipfs.start(timeout_s=120)
        _wait(finalized(4), "round 4 after the store outage", logs)
        all_alive()
        matchmaker_log = (logs / "matchmaker.log").read_text()
        assert "retrying with backoff" in matchmaker_log
        processes.stop_all()
        with IpfsStore(ipfs.api_url, timeout_s=10.0) as store:
            verdicts = verify_rounds(reader, store, deploy_block)
        assert [verdict.verdict for verdict in verdicts][:4] == [MATCH] * 4
    finally:
        processes.stop_all()
        ipfs.stop()
        node.stop()
