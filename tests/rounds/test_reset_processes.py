"""A chain reset under running processes: `knexa matchmaker run` and three `knexa org join`, each its
own OS process, while Anvil is killed and a fresh one starts on the same port with the market
redeployed (same address, same deployment block number: indistinguishable by either).

Every process notices (the block it read through is gone or has another hash), says so once, starts
clean under the new chain's key (chain id, market address, deployment block hash), keeps running,
and plays the new chain: rounds open and finalize there, and no organization resends a gain of the
old chain (a report on the new chain is only made after opening the new chain's bundle).

The reset falls mid-round: round 2 of the old chain is open with its gains reported (and kept in
every runtime's state.json) when the chain goes away. Anvil automines and only the test mines
empty blocks, so deadlines pass where the test says, whatever the machine's speed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from chain.anvil import AnvilNode
from chain.client import MarketClient, RoundStatus
from chain.devchain import DevChain
from exchange.local import LocalStore
from knexa.cli import app
from knexa.process_demo import Processes
from market.follower import ChainKey, chain_key
from matchmaker.audit import MATCH, verify_rounds
from tests.org.conftest import PASSWORD, init_and_register_through_cli
from tests.rounds.market_processes import start_market, wait_for

ROUND_BLOCKS = 40  # more blocks than a round's transactions mine: only the test passes a deadline
DETECTED = "chain reset or reorg detected"


def _wait(condition: Callable[[], bool], what: str, logs: Path, timeout_s: float = 180.0) -> None:
    wait_for(condition, what, logs, timeout_s, poll_s=0.2, tail_chars=2500)


def _play(chain: DevChain, reader: MarketClient, round_id: int, logs: Path) -> None:
    """Wait until round `round_id` opened and every student reported; pass its deadline; wait for
    the matchmaker to finalize it."""
    _wait(lambda: reader.open_round_id() == round_id, f"round {round_id} to open", logs)
    _wait(lambda: all(p.gain_reported for p in reader.pairs(round_id)), f"gains of round {round_id}", logs)
    chain.mine_until(reader.round(round_id).deadline_block + 1)
    _wait(lambda: reader.round(round_id).status is RoundStatus.FINALIZED, f"round {round_id} finalized", logs)


def test_processes_detect_a_chain_reset_once_and_play_the_new_chain(tmp_path: Path) -> None:
    node = AnvilNode()  # automine; no state file: a restart is a fresh chain
    store = LocalStore(tmp_path / "store")
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = Processes(logs)
    node.start()
    try:
        old = DevChain(node=node).start()
        homes = {f"org-{index:05d}": tmp_path / f"org-{index}" for index in range(3)}
        runner = CliRunner()
        addresses = init_and_register_through_cli(runner, old, str(store.root), homes)
        manifest = tmp_path / "deployment.json"
        start_market(processes, node.rpc_url, manifest, str(store.root), homes, ROUND_BLOCKS)

        def all_alive() -> None:
            for name, process in processes.children.items():
                assert process.poll() is None, f"{name} exited: {(logs / f'{name}.log').read_text()[-3000:]}"

        reader = old.client()
        _play(old, reader, 1, logs)
        _wait(lambda: reader.open_round_id() == 2, "round 2 to open", logs)
        _wait(lambda: all(p.gain_reported for p in reader.pairs(2)), "gains of round 2", logs)
        old_key = chain_key(reader, old.deployment.deploy_block)
        old.mine(25)  # the old chain is ahead of where the new one will be for a while
        old_pairs = {(p.teacher, p.student) for p in reader.pairs(2)}
        all_alive()

        node.stop()  # the chain is gone under the running processes ...
        # (blocks are stamped in whole seconds: a chain redeployed within the same second would
        # have byte-identical first blocks, i.e. be the same chain as far as anyone can tell)
        time.sleep(1.1)
        node.start()  # ... and a fresh one is on the same port
        new = DevChain(node=node).start()
        assert new.deployment.market_address == old.deployment.market_address
        assert new.deployment.deploy_block == old.deployment.deploy_block
        for home in homes.values():  # the organizations register again, as their operators would
            registered = runner.invoke(
                app,
                ["org", "register", "--stake", "2", "--home", str(home), "--json"],
                env={"KNEXA_PASSWORD": PASSWORD},
            )
            assert registered.exit_code == 0, registered.output
        reader = new.client()
        new_key = chain_key(reader, new.deployment.deploy_block)
        assert new_key != old_key
        assert reader.open_round_id() in (0, 1)  # nothing of the old chain's round 2 is here

        _play(new, reader, 1, logs)
        _play(new, reader, 2, logs)
        all_alive()
        taking_part = {
            address
            for round_id in (1, 2)
            for p in reader.pairs(round_id)
            for address in (p.teacher, p.student)
        }
        assert taking_part == set(addresses.values())  # everybody plays the new chain

        for name, home in homes.items():
            state = json.loads((home / "state.json").read_text())
            assert ChainKey.from_json(state["chain"]) == new_key, name  # local state is the new chain's
            cache_header = json.loads((home / "events.jsonl").read_text().splitlines()[0])
            assert ChainKey.from_json(cache_header["chain"]) == new_key, name
        # every gain on the new chain was reported after its bundle was published on the new chain
        published = {
            (e.args["roundId"], e.args["student"]): e.block_number
            for e in new.events().read(new.deployment.deploy_block, names=["BundlePublished"])
        }
        for event in new.events().read(new.deployment.deploy_block, names=["GainReported"]):
            assert event.block_number > published[(event.args["roundId"], event.args["student"])]
        assert not [e.args for e in new.events().read(new.deployment.deploy_block, names=["PairSettled"])]
        assert old_pairs  # (the old round 2 had pairs whose gains were kept and must not leak)

        for name in ["matchmaker", *homes]:
            text = (logs / f"{name}.log").read_text()
            assert text.count(DETECTED) == 1, f"{name} said {text.count(DETECTED)} times: {text[-3000:]}"
        processes.stop_all()
        verdicts = verify_rounds(reader, store, new.deployment.deploy_block)
        assert len(verdicts) >= 2  # (the matchmaker may have opened round 3 meanwhile)
        assert all(verdict.verdict == MATCH for verdict in verdicts)
    finally:
        processes.stop_all()
        node.stop()
