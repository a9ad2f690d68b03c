"""The IPFS node stopped for a minute mid-round, under `knexa matchmaker run` and three
`knexa org join` processes (real Anvil, real IPFS node, real CLI entry points).

The round opens, then the store goes down for about 60 s before any bundle is published or
fetched, and comes back on the same port from the same repository. Nobody crashes, nobody is
slashed, nobody reports -1 (or even a neutral "unavailable": the report deadline never passed),
the round is played once the store is back, and the next round is played and finalized too.

Determinism: Anvil automines (a block per transaction) and only the test mines empty blocks, so a
deadline passes only when the test moves the chain past it, never because the machine was slow.
So that the outage falls between the opening and the first fetch on every run, the organization
processes are frozen (SIGSTOP) while the round opens and thawed (SIGCONT) once the store is down.
"""

from __future__ import annotations

import json
import os
import signal
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

ROUND_BLOCKS = 60  # far more blocks than a round's transactions mine: only the test passes a deadline
OUTAGE_S = 60.0
WAD = 10**18


def _wait(condition: Callable[[], bool], what: str, logs: Path, timeout_s: float = 240.0) -> None:
    wait_for(condition, what, logs, timeout_s, poll_s=0.2, tail_chars=2000)


def _actions(log: Path) -> list[dict[str, object]]:
    """The JSON actions an `org join --json` process printed."""
    actions = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            try:
                actions.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return actions


@pytest.mark.slow
@pytest.mark.ipfs
def test_a_minute_long_store_outage_mid_round_punishes_nobody(tmp_path: Path) -> None:
    node = AnvilNode()  # automine
    ipfs = IpfsNode(tmp_path / "ipfs", find_ipfs())
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = Processes(logs)
    node.start()
    try:
        ipfs.start(timeout_s=120)
        chain = DevChain(node=node).start()
        homes = {f"org-{index:05d}": tmp_path / f"org-{index}" for index in range(3)}
        addresses = init_and_register_through_cli(CliRunner(), chain, ipfs.api_url, homes)
        manifest = tmp_path / "deployment.json"
        start_market(processes, node.rpc_url, manifest, ipfs.api_url, homes, ROUND_BLOCKS)
        orgs = [processes.children[name] for name in homes]
        reader = chain.client()
        deploy_block = chain.deployment.deploy_block

        def all_alive() -> None:
            for name, process in processes.children.items():
                assert process.poll() is None, f"{name} exited: {(logs / f'{name}.log').read_text()[-3000:]}"

        def finalized(round_id: int) -> Callable[[], bool]:
            return lambda: any(
                event.args["roundId"] == round_id
                for event in chain.events().read(deploy_block, names=["RoundFinalized"])
            )

        def all_reported(round_id: int) -> Callable[[], bool]:
            return lambda: all(pair.gain_reported for pair in reader.pairs(round_id))

        def play(round_id: int) -> None:
            """Wait until every student of the round reported, then move the chain past its deadline."""
            _wait(lambda: reader.open_round_id() == round_id, f"round {round_id} to open", logs)
            _wait(all_reported(round_id), f"every gain of round {round_id}", logs)
            chain.mine_until(reader.round(round_id).deadline_block + 1)
            _wait(finalized(round_id), f"round {round_id} to be finalized", logs)

        play(1)  # a round with the store up, as a reference
        _wait(lambda: reader.open_round_id() == 2, "round 2 to open", logs)
        _wait(all_reported(2), "every gain of round 2", logs)
        for process in orgs:
            os.kill(process.pid, signal.SIGSTOP)  # nobody looks at the chain while round 3 opens
        try:
            chain.mine_until(reader.round(2).deadline_block + 1)
            _wait(finalized(2), "round 2 to be finalized", logs)
            _wait(lambda: reader.open_round_id() == 3, "round 3 to open", logs)
            head_at_outage = reader.block_number()
            ipfs.stop(remove=False)  # the store is down mid-round, before any bundle of round 3 exists
        finally:
            for process in orgs:
                os.kill(process.pid, signal.SIGCONT)
        outage_ends = time.monotonic() + OUTAGE_S
        while time.monotonic() < outage_ends:
            all_alive()
            time.sleep(1.0)
        assert reader.open_round_id() == 3
        assert not any(pair.bundle_published for pair in reader.pairs(3))  # nothing got through meanwhile
        assert reader.block_number() < reader.round(3).report_deadline  # no deadline passed in the outage
        ipfs.start(timeout_s=120)  # back on the same port, from the same repository
        all_alive()

        _wait(all_reported(3), "every gain of round 3 after the store came back", logs)
        chain.mine_until(reader.round(3).deadline_block + 1)
        _wait(finalized(3), "round 3 to be finalized", logs)
        play(4)  # the market goes on: the next round is played and finalized
        all_alive()
        processes.stop_all()  # (so that the chain holds still while it is checked)

        # Nobody paid for the outage: no pair settled other than by a report, no stake slashed ...
        settled = chain.events().read(deploy_block, names=["PairSettled"])
        assert [event.args for event in settled] == []
        # ... every gain of the outage round is a real one (the deadline never passed, so not even a
        # neutral report), and its bundles were published after the store came back.
        reports = [
            event
            for event in chain.events().read(deploy_block, names=["GainReported"])
            if event.args["roundId"] == 3
        ]
        assert len(reports) == len(reader.pairs(3)) > 0
        assert all(int(event.args["gain"]) > -WAD for event in reports)
        published = [
            event
            for event in chain.events().read(deploy_block, names=["BundlePublished"])
            if event.args["roundId"] == 3
        ]
        assert published
        assert all(event.block_number > head_at_outage for event in published)
        for name in homes:
            kinds = [action.get("action") for action in _actions(logs / f"{name}.log")]
            assert not {"rejected", "unavailable", "missed"} & set(kinds), name
        assert set(addresses.values()) <= set(reader.organization_addresses())
        fee = reader.parameters().exchange_fee
        all_published = chain.events().read(deploy_block, names=["BundlePublished"])
        for address in addresses.values():  # the stake paid the fees of the bundles received, no more
            received = sum(event.args["student"].lower() == address.lower() for event in all_published)
            assert reader.organization(address).stake == 2 * WAD - received * fee
        # the processes saw the outage and retried (nobody just missed it)
        joined = "".join((logs / f"{name}.log").read_text() for name in homes)
        assert "retrying with backoff" in joined or "has not delivered the bundle yet" in joined
        with IpfsStore(ipfs.api_url, timeout_s=10.0) as store:
            verdicts = verify_rounds(reader, store, deploy_block)
        assert [verdict.verdict for verdict in verdicts][:4] == [MATCH] * 4
    finally:
        processes.stop_all()
        ipfs.stop()
        node.stop()
