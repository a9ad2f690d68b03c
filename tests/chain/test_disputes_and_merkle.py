"""v2 round protocol against a real Anvil: the Merkle tree agrees with the contract bit for bit,
disputes move fees, bonds and stake exactly as documented, and the ledger fold matches the views."""

from __future__ import annotations

import pytest
from eth_typing import HexStr

from chain.client import Outcome, PairPhase
from chain.devchain import DevChain
from chain.errors import ContractReverted
from chain.merkle import (
    MerkleError,
    PairTree,
    merkle_proof,
    merkle_root,
    pack_pairs,
    pair_leaf,
    unpack_pairs,
    verify,
)
from chain.units import ether, to_wad
from market.ledger import Ledger
from tests.chain.helpers import account_of, cid_of, open_ring, register_three


def test_merkle_known_answers_match_the_contract(dev_chain: DevChain) -> None:
    orgs = register_three(dev_chain)
    addresses = [account_of(org).address for org in orgs]
    reader = dev_chain.client()
    # the contract's own leaf function, for several indices and rounds
    for round_id, index in [(1, 0), (7, 3), (2**40, 2**31)]:
        on_chain = bytes(
            reader.call(reader.contract.functions.pairLeaf(round_id, index, addresses[0], addresses[1]))
        )
        assert on_chain == pair_leaf(round_id, index, addresses[0], addresses[1])
    # the root the contract computes at opening equals the one computed here
    _, pairs = open_ring(dev_chain, orgs)
    tree = PairTree.build(1, pairs)
    assert reader.round(1).pairs_root == tree.root
    assert unpack_pairs(pack_pairs(pairs)) == pairs
    for index in range(len(pairs)):
        assert verify(tree.proof(index), tree.root, tree.leaves[index])
    # a proof of another tree is rejected by the contract
    other = PairTree.build(1, [(addresses[0], addresses[2]), (addresses[2], addresses[0])])
    with pytest.raises(ContractReverted) as caught:
        orgs[0].transact(
            orgs[0].contract.functions.publishBundle(1, 0, addresses[2], cid_of("b"), other.proof(0))
        )
    assert caught.value.name == "NotInRound"


def test_clients_of_one_market_share_the_checked_pair_trees(dev_chain: DevChain) -> None:
    orgs = register_three(dev_chain)
    _, pairs = open_ring(dev_chain, orgs)
    reader = dev_chain.client()
    teacher_of = dict(pairs)
    first = reader.with_account(account_of(orgs[0]))
    second = first.with_account(account_of(orgs[1]))
    assert reader.account is None
    assert (first.account, second.account) == (account_of(orgs[0]), account_of(orgs[1]))
    tree = second.pair_tree(1)  # read from the RoundOpened event and checked against its root
    assert first.pair_tree(1) is tree
    assert reader.pair_tree(1) is tree
    assert tree.root == reader.round(1).pairs_root
    for client in (first, second):  # each sends as its own account, with proofs of the shared tree
        address = account_of(client).address
        client.publish_bundle(1, teacher_of[address], cid_of(f"bundle-{address}"))
    phases = [state.phase for state in reader.pairs(1)]
    assert phases.count(PairPhase.PUBLISHED) == 2
    # a read-only client stays read-only
    with pytest.raises(ValueError, match="no account"):
        reader.publish_bundle(1, teacher_of[account_of(orgs[2]).address], cid_of("b"))


def test_merkle_shapes_are_consistent() -> None:
    leaves = [bytes([i]) * 32 for i in range(1, 12)]
    root = merkle_root(leaves)
    for size in range(1, len(leaves) + 1):
        subset = leaves[:size]
        for index in range(size):
            assert verify(merkle_proof(subset, index), merkle_root(subset), subset[index])
    assert not verify(merkle_proof(leaves, 0), root, leaves[1])


def test_cached_tree_proofs_equal_the_recomputed_ones() -> None:
    addresses = [f"0x{index:040x}" for index in range(1, 40)]
    for size in (1, 2, 3, 7, 8, 9, 38):
        pairs = [(addresses[index], addresses[index + 1]) for index in range(size)]
        tree = PairTree.build(5, pairs)
        assert tree.levels[0] == tree.leaves
        assert tree.levels[-1] == (tree.root,)
        for index in range(size):
            assert tree.proof(index) == merkle_proof(tree.leaves, index)
        for outside in (-1, size):
            with pytest.raises(MerkleError):
                tree.proof(outside)


def test_dispute_defective_and_unfounded_with_ledger_fold(dev_chain: DevChain) -> None:
    orgs = register_three(dev_chain)
    addresses = [account_of(org).address for org in orgs]
    reader = dev_chain.client()
    params = reader.parameters()
    fee, bond = params.exchange_fee, params.dispute_bond
    deadline, pairs = open_ring(dev_chain, orgs)
    for index, (_, student) in enumerate(pairs):
        orgs[index].publish_bundle(1, student, cid_of(f"bundle-{index}"))
    # org 1 disputes org 0's bundle (garbage), org 2 disputes org 1's bundle falsely, org 0 reports
    orgs[1].dispute_bundle(1, addresses[0], cid_of("evidence-1"))
    orgs[2].dispute_bundle(1, addresses[1], cid_of("evidence-2"))
    orgs[0].report_gain(1, addresses[2], to_wad(-0.5), cid_of("adapter-0"))
    assert reader.held_bonds() == 2 * bond
    assert [pair.phase for pair in reader.pairs(1)] == [
        PairPhase.DISPUTED,
        PairPhase.DISPUTED,
        PairPhase.SETTLED,
    ]

    round_state = reader.round(1)
    dev_chain.mine_until(round_state.publish_deadline + 1)
    arbiter = dev_chain.matchmaker()
    teacher_stake = reader.organization(addresses[0]).stake
    arbiter.resolve_dispute(1, addresses[0], addresses[1], True, cid_of("verdict-1"))
    arbiter.resolve_dispute(1, addresses[1], addresses[2], False, cid_of("verdict-2"))
    dev_chain.mine_until(deadline + 1)
    arbiter.settle_round(1)

    state = {address: reader.organization(address) for address in addresses}
    slash = teacher_stake // 10
    assert state[addresses[1]].stake == ether(2)  # its fee and bond came back
    assert (
        reader.pending_withdrawal(addresses[1]) == slash + fee + bond
    )  # slash from org 0, fee + bond from org 2
    assert state[addresses[0]].stake == teacher_stake - slash
    assert state[addresses[2]].stake == ether(2) - fee - bond  # lost its bond
    assert reader.pending_withdrawal(addresses[2]) == fee  # org 0 reported: fee to org 2
    assert state[addresses[2]].reputation > 0  # a negative report did not hurt the teacher
    assert reader.escrowed_fees() == 0
    assert reader.held_bonds() == 0

    events = dev_chain.events().read(dev_chain.deployment.deploy_block)
    outcomes = [Outcome(event.args["outcome"]) for event in events if event.name == "PairSettled"]
    assert outcomes == [Outcome.DEFECTIVE, Outcome.UNFOUNDED]
    ledger = Ledger.from_events(events, initial_reputation=0)
    for address in addresses:
        folded = ledger.organizations[address]
        assert (folded.stake, folded.reputation, folded.credits, folded.pending_withdrawal) == (
            state[address].stake,
            state[address].reputation,
            state[address].credits,
            reader.pending_withdrawal(address),
        )
    assert ledger.rounds[1].pairs[0].outcome is Outcome.DEFECTIVE
    assert ledger.rounds[1].pairs[0].evidence_cid == cid_of("evidence-1")


def test_settle_sends_no_list_once_every_pair_is_settled(dev_chain: DevChain) -> None:
    """Every report settles its pair, so the client closes the round without the pair list; while a
    pair is left, closing without the list (to skip its settlement) is refused."""
    orgs = register_three(dev_chain)
    addresses = [account_of(org).address for org in orgs]
    reader = dev_chain.client()
    deadline, pairs = open_ring(dev_chain, orgs)
    assert reader.unsettled_pairs(1) == 3
    for index, (_, student) in enumerate(pairs):
        orgs[index].publish_bundle(1, student, cid_of(f"bundle-{index}"))
    for index, (teacher, _) in enumerate(pairs):
        orgs[(index + 1) % 3].report_gain(1, teacher, to_wad(0.1), cid_of(f"adapter-{index}"))
    assert reader.unsettled_pairs(1) == 0
    dev_chain.mine_until(deadline + 1)
    settled = dev_chain.matchmaker().settle_round(1)
    sent = dev_chain.w3.eth.get_transaction(HexStr(settled.transaction_hash))
    _, arguments = reader.contract.decode_function_input(sent["input"])
    assert arguments["pairs"] == b""
    assert reader.open_round_id() == 0
    assert reader.escrowed_fees() == 0

    # round 2: one student stays silent; an empty list cannot close the round past its pair
    deadline, pairs = open_ring(dev_chain, orgs)
    for index, (_, student) in enumerate(pairs):
        orgs[index].publish_bundle(2, student, cid_of(f"bundle-2-{index}"))
    orgs[1].report_gain(2, addresses[0], to_wad(0.1), cid_of("adapter-2-0"))
    orgs[2].report_gain(2, addresses[1], to_wad(0.1), cid_of("adapter-2-1"))
    assert reader.unsettled_pairs(2) == 1
    dev_chain.mine_until(deadline + 1)
    with pytest.raises(ContractReverted) as caught:
        orgs[1].transact(orgs[1].contract.functions.settleRound(2, b""))
    assert caught.value.name == "PairsMismatch"
    silent_stake = reader.organization(addresses[0]).stake
    orgs[1].settle_round(2)
    assert reader.organization(addresses[0]).stake == silent_stake - silent_stake // 10  # NoReport
    assert reader.unsettled_pairs(2) == 0
    events = dev_chain.events().read(dev_chain.deployment.deploy_block)
    ledger = Ledger.from_events(events, initial_reputation=0)
    for address in addresses:
        assert ledger.organizations[address].pending_withdrawal == reader.pending_withdrawal(address)
        assert ledger.organizations[address].stake == reader.organization(address).stake
