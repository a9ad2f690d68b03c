"""A full marketplace round for three organizations against a real Anvil node."""

from __future__ import annotations

from chain.client import OrganizationStatus, Outcome, PairPhase, RoundStatus, cid_digest
from chain.devchain import DevChain
from chain.units import ether, to_wad
from tests.chain.helpers import account_of, cid_of, open_ring, register_three


def _accounted(chain: DevChain, addresses: list[str]) -> int:
    client = chain.client()
    total = client.escrowed_fees() + client.held_bonds()
    for address in addresses:
        total += client.organization(address).stake + client.pending_withdrawal(address)
    return total


def test_full_round_register_open_publish_report_finalize_withdraw_exit(dev_chain: DevChain) -> None:
    orgs = register_three(dev_chain)
    addresses = [account_of(org).address for org in orgs]
    reader = dev_chain.client()
    assert reader.contract_balance() == ether(6)

    deadline, pairs = open_ring(dev_chain, orgs)
    assert reader.open_round_id() == 1
    round_state = reader.round(1)
    assert round_state.status is RoundStatus.OPEN
    assert round_state.decision_cid == cid_of("decision-1")
    assert round_state.report_deadline == deadline
    assert round_state.publish_deadline == deadline - reader.parameters().min_report_window_blocks
    assert round_state.pairs_root == reader.pair_tree(1).root
    assert [(pair.teacher, pair.student) for pair in reader.pairs(1)] == pairs

    # Every teacher delivers; students 1 and 2 report, student 0 does not.
    for index, (_, student) in enumerate(pairs):
        orgs[index].publish_bundle(1, student, cid_of(f"bundle-{index}"))
    orgs[1].report_gain(1, addresses[0], to_wad(0.25), cid_of("adapter-1"))
    orgs[2].report_gain(1, addresses[1], to_wad(-0.125), cid_of("adapter-2"))
    assert _accounted(dev_chain, addresses) == reader.contract_balance()
    assert [pair.phase for pair in reader.pairs(1)] == [
        PairPhase.SETTLED,
        PairPhase.SETTLED,
        PairPhase.PUBLISHED,
    ]

    dev_chain.mine_until(deadline + 1)
    dev_chain.matchmaker().finalize_round(1)
    assert reader.round(1).status is RoundStatus.FINALIZED
    assert reader.escrowed_fees() == 0
    assert _accounted(dev_chain, addresses) == reader.contract_balance()

    fee = reader.parameters().exchange_fee
    state = [reader.organization(address) for address in addresses]
    assert state[0].credits == to_wad(0.25)  # taught org 1, which gained 0.25
    assert state[1].credits == 0  # its student reported a loss
    slash = (ether(2) - fee) // 10  # org 0 missed its report: 10% of its stake after the fee
    assert state[0].stake == ether(2) - fee - slash
    assert reader.pending_withdrawal(addresses[2]) == fee + slash  # org 2 taught org 0

    events = dev_chain.events().read(dev_chain.deployment.deploy_block)
    names = [event.name for event in events]
    assert names.count("RoundOpened") == 1
    assert names.count("BundlePublished") == 3
    assert names.count("GainReported") == 2
    settled = [event for event in events if event.name == "PairSettled"]
    assert len(settled) == 1
    assert settled[0].args["offender"] == addresses[0]
    assert settled[0].args["outcome"] == Outcome.NO_REPORT
    assert settled[0].args["slashed"] == slash
    finalized = next(event for event in events if event.name == "RoundFinalized")
    assert finalized.args["settledNow"] == 1

    # Withdraw earnings, then leave with the remaining stake.
    balance_before = dev_chain.w3.eth.get_balance(addresses[2])
    receipt = orgs[2].withdraw()
    gas_cost = receipt.gas_used * receipt.receipt["effectiveGasPrice"]
    assert dev_chain.w3.eth.get_balance(addresses[2]) == balance_before + fee + slash - gas_cost

    orgs[2].request_exit()
    assert reader.organization(addresses[2]).status is OrganizationStatus.EXITING
    dev_chain.mine(reader.parameters().exit_cooldown_blocks)
    orgs[2].complete_exit()
    assert reader.organization(addresses[2]).status is OrganizationStatus.EXITED
    assert reader.pending_withdrawal(addresses[2]) == ether(2) - fee
    orgs[2].withdraw()
    assert _accounted(dev_chain, addresses) == reader.contract_balance()


def test_profile_update_and_stake_top_up(dev_chain: DevChain) -> None:
    orgs = register_three(dev_chain)
    address = account_of(orgs[0]).address
    orgs[0].update_profile(cid_of("profile-v2"))
    orgs[0].add_stake(ether(1))
    state = dev_chain.client().organization(address)
    assert state.profile_digest == cid_digest(cid_of("profile-v2"))
    assert state.stake == ether(3)
    assert [org.address for org in dev_chain.client().organizations()] == [
        account_of(org).address for org in orgs
    ]
