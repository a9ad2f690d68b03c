"""One negative test per access rule and per bad input, against a real Anvil node.

Each checks the decoded error *and* that nothing changed: a rejected call is caught at estimation,
so no transaction is sent (the sender's nonce stays put) and the contract's state is untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chain.client import DEFAULT_PARAMETERS, MarketClient, MarketParameters, OrganizationStatus
from chain.devchain import DevChain
from chain.errors import AccessDenied, ContractReverted
from chain.units import ether, to_wad
from tests.chain.helpers import account_of, cid_of, open_ring, public_key, register_three


def _snapshot(chain: DevChain, addresses: list[str]) -> tuple[Any, ...]:
    client = chain.client()
    return (
        client.contract_balance(),
        client.escrowed_fees(),
        client.next_round_id(),
        tuple(client.organization(address) for address in addresses),
        tuple(client.pending_withdrawal(address) for address in addresses),
        tuple(chain.w3.eth.get_transaction_count(address) for address in addresses),
    )


def _rejected(
    chain: DevChain, addresses: list[str], action: Callable[[], object], error: str
) -> ContractReverted:
    before = _snapshot(chain, addresses)
    with pytest.raises(ContractReverted) as caught:
        action()
    assert caught.value.name == error, caught.value
    assert _snapshot(chain, addresses) == before
    return caught.value


@pytest.fixture
def market(dev_chain: DevChain) -> tuple[DevChain, list[MarketClient], list[str]]:
    orgs = register_three(dev_chain)
    everyone = [account_of(org).address for org in orgs] + [
        account_of(dev_chain.matchmaker()).address,
        account_of(dev_chain.organization(5)).address,
    ]
    return dev_chain, orgs, everyone


def test_stake_too_low(market: tuple[DevChain, list[MarketClient], list[str]]) -> None:
    chain, _, everyone = market
    stranger = chain.organization(5)
    error = _rejected(
        chain,
        everyone,
        lambda: stranger.register("cheap", cid_of("p"), public_key(9), ether("0.5")),
        "StakeTooLow",
    )
    assert error.arguments == {"sent": ether("0.5"), "required": DEFAULT_PARAMETERS.min_stake}


def test_register_twice(market: tuple[DevChain, list[MarketClient], list[str]]) -> None:
    chain, orgs, everyone = market
    _rejected(
        chain,
        everyone,
        lambda: orgs[0].register("x", cid_of("p"), public_key(1), ether(1)),
        "AlreadyRegistered",
    )


@pytest.mark.parametrize(
    ("name", "cid", "key", "error"),
    [
        ("", cid_of("p"), public_key(3), "InvalidName"),
        ("n" * 65, cid_of("p"), public_key(3), "InvalidName"),
        ("ok", b"", public_key(3), "InvalidCid"),
        ("ok", b"\x01" * 129, public_key(3), "InvalidCid"),
        ("ok", cid_of("p"), b"\x04" + bytes(32), "InvalidPublicKey"),
        ("ok", cid_of("p"), public_key(3)[:20], "InvalidPublicKey"),
    ],
)
def test_bad_registration_input(
    market: tuple[DevChain, list[MarketClient], list[str]], name: str, cid: bytes, key: bytes, error: str
) -> None:
    chain, _, everyone = market
    stranger = chain.organization(5)
    _rejected(chain, everyone, lambda: stranger.register(name, cid, key, ether(1)), error)


def test_unknown_organization(market: tuple[DevChain, list[MarketClient], list[str]]) -> None:
    chain, orgs, everyone = market
    stranger = chain.organization(5)
    error = _rejected(chain, everyone, lambda: stranger.update_profile(cid_of("p2")), "UnknownOrganization")
    assert isinstance(error, AccessDenied)
    pairs = [(account_of(orgs[0]).address, account_of(stranger).address)]
    _rejected(
        chain,
        everyone,
        lambda: chain.matchmaker().open_round(
            1, cid_of("d"), bytes(32), pairs, chain.w3.eth.block_number + 9
        ),
        "UnknownOrganization",
    )


def test_wrong_role_opens_round(market: tuple[DevChain, list[MarketClient], list[str]]) -> None:
    chain, orgs, everyone = market
    pairs = [(account_of(orgs[0]).address, account_of(orgs[1]).address)]
    error = _rejected(
        chain,
        everyone,
        lambda: orgs[0].open_round(1, cid_of("d"), bytes(32), pairs, chain.w3.eth.block_number + 9),
        "AccessControlUnauthorizedAccount",
    )
    assert isinstance(error, AccessDenied)


def test_wrong_role_sets_parameters(market: tuple[DevChain, list[MarketClient], list[str]]) -> None:
    chain, _, everyone = market
    _rejected(
        chain,
        everyone,
        lambda: chain.matchmaker().set_parameters(DEFAULT_PARAMETERS),
        "AccessControlUnauthorizedAccount",
    )


def test_wrong_teacher_publishes(market: tuple[DevChain, list[MarketClient], list[str]]) -> None:
    chain, orgs, everyone = market
    _, pairs = open_ring(chain, orgs)
    student_of_0 = pairs[0][1]
    _rejected(chain, everyone, lambda: orgs[2].publish_bundle(1, student_of_0, cid_of("b")), "NotInRound")


def test_wrong_student_reports(market: tuple[DevChain, list[MarketClient], list[str]]) -> None:
    chain, orgs, everyone = market
    _, pairs = open_ring(chain, orgs)
    orgs[0].publish_bundle(1, pairs[0][1], cid_of("b"))
    stranger = chain.organization(5)
    _rejected(
        chain,
        everyone,
        lambda: stranger.report_gain(1, pairs[0][0], to_wad(0.1), cid_of("a")),
        "NotInRound",
    )


def test_double_report(market: tuple[DevChain, list[MarketClient], list[str]]) -> None:
    chain, orgs, everyone = market
    _, pairs = open_ring(chain, orgs)
    orgs[0].publish_bundle(1, pairs[0][1], cid_of("b"))
    orgs[1].report_gain(1, pairs[0][0], to_wad(0.1), cid_of("a"))
    _rejected(
        chain,
        everyone,
        lambda: orgs[1].report_gain(1, pairs[0][0], to_wad(0.2), cid_of("a2")),
        "WrongPairState",
    )


def test_report_before_bundle_and_out_of_range(
    market: tuple[DevChain, list[MarketClient], list[str]],
) -> None:
    chain, orgs, everyone = market
    _, pairs = open_ring(chain, orgs)
    _rejected(chain, everyone, lambda: orgs[1].report_gain(1, pairs[0][0], 1, cid_of("a")), "WrongPairState")
    orgs[0].publish_bundle(1, pairs[0][1], cid_of("b"))
    _rejected(
        chain,
        everyone,
        lambda: orgs[1].report_gain(1, pairs[0][0], to_wad(1.5), cid_of("a")),
        "GainOutOfRange",
    )


def test_late_publish(market: tuple[DevChain, list[MarketClient], list[str]]) -> None:
    chain, orgs, everyone = market
    deadline, pairs = open_ring(chain, orgs)
    chain.mine_until(deadline + 1)
    _rejected(chain, everyone, lambda: orgs[0].publish_bundle(1, pairs[0][1], cid_of("b")), "DeadlinePassed")


def test_finalize_before_deadline(market: tuple[DevChain, list[MarketClient], list[str]]) -> None:
    chain, orgs, everyone = market
    open_ring(chain, orgs)
    _rejected(chain, everyone, lambda: orgs[0].finalize_round(1), "DeadlineNotReached")


def test_too_many_pairs(market: tuple[DevChain, list[MarketClient], list[str]]) -> None:
    chain, orgs, everyone = market
    limit = DEFAULT_PARAMETERS.max_pairs_per_round
    pairs = [(account_of(orgs[0]).address, account_of(orgs[1]).address)] * (limit + 1)
    error = _rejected(
        chain,
        everyone,
        lambda: chain.matchmaker().open_round(
            1, cid_of("d"), bytes(32), pairs, chain.w3.eth.block_number + 9
        ),
        "TooManyPairs",
    )
    assert error.arguments == {"count": limit + 1, "maximum": limit}


def test_round_replay_and_out_of_order(market: tuple[DevChain, list[MarketClient], list[str]]) -> None:
    chain, orgs, everyone = market
    pairs = [(account_of(orgs[0]).address, account_of(orgs[1]).address)]
    matchmaker = chain.matchmaker()
    _rejected(
        chain,
        everyone,
        lambda: matchmaker.open_round(2, cid_of("d"), bytes(32), pairs, chain.w3.eth.block_number + 9),
        "UnexpectedRoundId",
    )
    deadline, _ = open_ring(chain, orgs)
    chain.mine_until(deadline + 1)
    matchmaker.finalize_round(1)
    _rejected(
        chain,
        everyone,
        lambda: matchmaker.open_round(1, cid_of("d"), bytes(32), pairs, chain.w3.eth.block_number + 9),
        "UnexpectedRoundId",
    )


def test_stake_below_minimum_to_be_paired(dev_chain: DevChain) -> None:
    orgs = register_three(dev_chain)
    dev_chain.admin().set_parameters(
        MarketParameters(**{**DEFAULT_PARAMETERS.__dict__, "min_stake": ether(3)})
    )
    everyone = [account_of(org).address for org in orgs]
    pairs = [(everyone[0], everyone[1])]
    _rejected(
        dev_chain,
        everyone,
        lambda: dev_chain.matchmaker().open_round(
            1, cid_of("d"), bytes(32), pairs, dev_chain.w3.eth.block_number + 9
        ),
        "StakeBelowMinimum",
    )


def test_exit_during_round_waits_for_its_settlement(
    market: tuple[DevChain, list[MarketClient], list[str]],
) -> None:
    chain, orgs, everyone = market
    deadline, _ = open_ring(chain, orgs)
    orgs[1].request_exit()  # always allowed: it takes effect once the round is settled
    assert chain.client().organization(everyone[1]).status is OrganizationStatus.EXITING
    chain.mine(chain.client().parameters().exit_cooldown_blocks)
    error = _rejected(chain, everyone, orgs[1].complete_exit, "InOpenRound")
    assert error.arguments["roundId"] == 1
    chain.mine_until(deadline + 1)
    chain.matchmaker().settle_round(1)
    pairs = [(everyone[1], everyone[2])]
    _rejected(  # an exiting organization cannot be paired again
        chain,
        everyone,
        lambda: chain.matchmaker().open_round(
            2, cid_of("d"), bytes(32), pairs, chain.w3.eth.block_number + 9
        ),
        "OrganizationNotActive",
    )
    orgs[1].complete_exit()
    assert chain.client().organization(everyone[1]).status is OrganizationStatus.EXITED


def test_exit_cooldown_and_nothing_to_withdraw(
    market: tuple[DevChain, list[MarketClient], list[str]],
) -> None:
    chain, orgs, everyone = market
    _rejected(chain, everyone, orgs[0].withdraw, "NothingToWithdraw")
    _rejected(chain, everyone, orgs[0].complete_exit, "ExitNotRequested")
    orgs[0].request_exit()
    _rejected(chain, everyone, orgs[0].complete_exit, "CooldownNotOver")


def test_read_only_client_cannot_send(dev_chain: DevChain) -> None:
    with pytest.raises(ValueError, match="only read"):
        dev_chain.client().finalize_round(1)
