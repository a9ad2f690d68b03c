"""A chain reset under running processes: Anvil restarted fresh on the same port and the market
redeployed at the same address. The matchmaker and every organization runtime notice (the block
they read through is gone or has another hash), start clean, and say so once; no state of the old
chain leaks into the new one."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from coincurve import PrivateKey

from chain.anvil import AnvilNode
from chain.devchain import DevChain
from chain.units import ether
from exchange.cid import cid_binary
from exchange.local import LocalStore
from market.follower import ChainKey, chain_key
from matchmaker.audit import MATCH, verify_rounds
from matchmaker.policies import PolicyParams
from matchmaker.service import Matchmaker
from org.runtime import OrgRuntime
from sim.learner import SyntheticLearner

NAMES = [f"org-{index:05d}" for index in range(3)]


def _register(chain: DevChain, store: LocalStore) -> None:
    for index, name in enumerate(NAMES):
        key = PrivateKey(bytes([index + 1]) * 32)
        profile = store.put(SyntheticLearner(name).profile().to_bytes())
        chain.organization(index).register(
            name, cid_binary(profile), key.public_key.format(compressed=True), ether(2)
        )


def _runtimes(chain: DevChain, store: LocalStore, tmp_path: Path) -> list[OrgRuntime]:
    return [
        OrgRuntime(
            chain.organization(index),
            store,
            PrivateKey(bytes([index + 1]) * 32),
            SyntheticLearner(name),
            tmp_path / name,
            chain.deployment.deploy_block,
        )
        for index, name in enumerate(NAMES)
    ]


def _play(runtimes: list[OrgRuntime]) -> None:
    for _ in range(2):
        for runtime in runtimes:
            runtime.step()


def test_a_reset_chain_is_detected_and_everyone_starts_clean(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = LocalStore(tmp_path / "store")
    node = AnvilNode()
    node.start()
    try:
        old = DevChain(node=node).start()
        _register(old, store)
        matchmaker = Matchmaker(
            old.matchmaker(), store, PolicyParams(), seed=1, from_block=0, round_blocks=40
        )
        runtimes = _runtimes(old, store, tmp_path)
        assert matchmaker.step().action == "opened"
        _play(runtimes)  # every gain of round 1 is reported and kept in each state.json
        old_key = chain_key(old.client(), old.deployment.deploy_block)
        assert all(ChainKey.from_json(r.state.chain) == old_key for r in runtimes)
        old.mine(30)  # the old chain is far ahead of where the new one will be

        node.stop()  # a fresh Anvil on the same port, no state: same accounts, same nonces
        # Blocks are stamped in whole seconds: redeployed within the same second, the new chain's
        # first blocks would be byte-identical to the old ones (the same chain, as far as anyone can
        # tell up to there). A second later they differ, as they do in any real reset.
        time.sleep(1.1)
        node.start()
        new = DevChain(node=node).start()
        assert new.deployment.market_address == old.deployment.market_address  # indistinguishable by address
        _register(new, store)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            opened = matchmaker.step()  # on the unfixed code: "waiting" for the old chain's round 1
            assert opened.action == "opened", opened
            learnt_before = [r.learner.rounds_learnt for r in runtimes]  # type: ignore[attr-defined]
            _play(runtimes)
        new_key = chain_key(new.client(), new.deployment.deploy_block)
        assert new_key != old_key
        for runtime in runtimes:
            assert ChainKey.from_json(runtime.state.chain) == new_key
        # every student opened the new chain's bundle and learnt again: no old gain was resent
        learnt_after = [r.learner.rounds_learnt for r in runtimes]  # type: ignore[attr-defined]
        assert [after - before for before, after in zip(learnt_before, learnt_after, strict=True)] == [
            1,
            1,
            1,
        ]
        assert all(pair.gain_reported for pair in new.client().pairs(1))
        detected = [record for record in caplog.records if "reset or reorg detected" in record.getMessage()]
        assert len(detected) == 4  # once per follower: the matchmaker and three organizations
        assert sum("starting clean" in record.getMessage() for record in caplog.records) >= 4
        for runtime in runtimes:
            runtime.step()  # said once: nothing more is detected
        assert len([r for r in caplog.records if "reset or reorg detected" in r.getMessage()]) == 4

        new.mine_until(new.client().round(1).deadline_block + 1)
        assert matchmaker.step().action == "finalized"
        verdicts = verify_rounds(new.client(), store, new.deployment.deploy_block)
        assert [verdict.verdict for verdict in verdicts] == [MATCH]
    finally:
        node.stop()


def test_a_restarted_runtime_resumes_from_its_event_cache(tmp_path: Path) -> None:
    """The runtime keeps the events it read (under the chain's key): a restart reads only new blocks,
    and its ledger is the one a full re-read gives."""
    store = LocalStore(tmp_path / "store")
    with AnvilNode() as node:
        chain = DevChain(node=node).start()
        _register(chain, store)
        matchmaker = Matchmaker(
            chain.matchmaker(), store, PolicyParams(), seed=1, from_block=0, round_blocks=40
        )
        assert matchmaker.step().action == "opened"
        first = _runtimes(chain, store, tmp_path)
        _play(first)
        read_through = first[0]._follower.read_through
        assert read_through > 0

        reads: list[tuple[int, int | None]] = []
        restarted = _runtimes(chain, store, tmp_path)[0]
        original = restarted._follower._reader.read

        def counting(from_block: int = 0, to_block: int | None = None, names: object = None) -> list:  # type: ignore[type-arg]
            reads.append((from_block, to_block))
            return original(from_block, to_block)

        restarted._follower._reader.read = counting  # type: ignore[method-assign]
        assert restarted._follower.read_through == read_through  # resumed before reading anything
        chain.mine(2)
        restarted.step()
        assert reads
        assert all(start > read_through for start, _ in reads)
        fresh = Matchmaker(chain.matchmaker(), store, PolicyParams(), seed=1, from_block=0)
        ledger, _ = fresh.sync()
        mine = restarted._follower.sync()[0]
        assert mine.rounds.keys() == ledger.rounds.keys()
        assert mine.organizations == ledger.organizations
        assert mine.rounds[1].pairs == ledger.rounds[1].pairs
