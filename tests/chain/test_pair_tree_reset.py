"""A long-lived client's cached pair tree does not outlive a chain reset (real Anvil, restarted fresh
on the same port, the market redeployed at the same address): round 1 of the new chain has other
pairs, and the old tree's proofs would be refused (`NotInRound`) for as long as the process runs."""

from __future__ import annotations

from chain.anvil import AnvilNode
from chain.client import PairPhase
from chain.devchain import DevChain
from tests.chain.helpers import account_of, cid_of, register_three


def test_a_cached_pair_tree_is_read_again_after_a_reset() -> None:
    with AnvilNode() as node:
        old = DevChain(node=node).start()
        orgs = register_three(old)
        a, b, c = (account_of(org).address for org in orgs)
        teacher = orgs[0]  # kept across the reset, as a running process keeps its client
        old.matchmaker().open_round(1, cid_of("old"), b"\x01" * 32, [(a, b)], old.w3.eth.block_number + 20)
        assert list(teacher.pair_tree(1).pairs) == [(a, b)]  # cached

        node.stop()
        node.start()
        new = DevChain(node=node).start()
        assert new.deployment.market_address == old.deployment.market_address
        register_three(new)
        new.matchmaker().open_round(
            1, cid_of("new"), b"\x01" * 32, [(c, b), (a, c)], new.w3.eth.block_number + 20
        )

        assert list(teacher.pair_tree(1).pairs) == [(c, b), (a, c)]
        teacher.publish_bundle(1, c, cid_of("bundle"))  # the new tree's proof is accepted
        assert [pair.phase for pair in new.client().pairs(1)] == [PairPhase.ASSIGNED, PairPhase.PUBLISHED]
