"""The event-sourced ledger equals the contract's own views after a busy history."""

from __future__ import annotations

from pathlib import Path

import pytest

from chain.devchain import DevChain
from chain.units import ether, to_wad
from exchange.local import LocalStore
from market.ledger import Ledger, LedgerError
from market.parameters import read_constants, reputation_ema
from matchmaker.audit import Replayer
from tests.chain.helpers import account_of, cid_of, open_ring, public_key, register_three


def _initial(chain: DevChain) -> int:
    return read_constants(chain.client()).initial_reputation


def _assert_matches_chain(chain: DevChain, ledger: Ledger) -> None:
    client = chain.client()
    assert list(ledger.organizations) == client.organization_addresses()
    for address, record in ledger.organizations.items():
        state = client.organization(address)
        assert state.status is record.status
        assert (record.stake, record.reputation, record.credits) == (
            state.stake,
            state.reputation,
            state.credits,
        )
        assert chain.w3.keccak(record.profile_cid) == state.profile_digest
        assert record.pending_withdrawal == client.pending_withdrawal(address)
    for round_id, record in ledger.rounds.items():
        pairs = client.pairs(round_id)
        assert [(p.teacher, p.student) for p in record.pairs] == [(p.teacher, p.student) for p in pairs]
        assert [p.gain or None for p in pairs] == [p.gain or None for p in record.pairs]


def test_ledger_replays_a_busy_history(dev_chain: DevChain) -> None:
    orgs = register_three(dev_chain)
    addresses = [account_of(org).address for org in orgs]
    late = dev_chain.organization(3)
    late.register("late", cid_of("late"), public_key(7), ether("1.5"))
    orgs[0].update_profile(cid_of("profile-0-v2"))
    orgs[1].add_stake(ether(1))

    for round_number in (1, 2):
        deadline, pairs = open_ring(dev_chain, orgs)
        for index, (_, student) in enumerate(pairs):
            if round_number == 2 and index == 2:
                continue  # a no-show teacher in round 2
            orgs[index].publish_bundle(round_number, student, cid_of(f"b{round_number}{index}"))
        orgs[1].report_gain(round_number, addresses[0], to_wad(0.2 * round_number), cid_of("a"))
        dev_chain.mine_until(deadline + 1)
        dev_chain.matchmaker().finalize_round(round_number)
        # Slashed organizations top up so that they stay eligible.
        for org in orgs:
            state = org.organization(account_of(org).address)
            if state.stake < ether(1):
                org.add_stake(ether(1) - state.stake)

    orgs[2].withdraw()
    late.request_exit()
    dev_chain.mine(10)
    late.complete_exit()

    events = dev_chain.events().read(dev_chain.deployment.deploy_block)
    ledger = Ledger.from_events(events, initial_reputation=_initial(dev_chain))
    _assert_matches_chain(dev_chain, ledger)
    assert ledger.eligible() == addresses  # the exited organization is no longer eligible
    assert ledger.open_round() is None
    assert [r.round_id for r in ledger.finalized_rounds()] == [1, 2]
    assert ledger.rounds[2].gains()[(addresses[0], addresses[1])] == to_wad(0.4)

    # The per-round records are the events': every slash, reward and reputation move is there, and
    # every move follows the contract's EMA (`market.parameters.reputation_ema`) for one of its signals.
    assert sum(len(r.slashes) for r in ledger.rounds.values()) >= 1  # round 2's no-show teacher
    assert {len(r.rewards) for r in ledger.rounds.values()} >= {2}
    weight = dev_chain.client().parameters().reputation_weight_bps
    wad = 10**18
    for record in ledger.rounds.values():
        signals = [0, wad // 2, wad] + [
            (wad + gain) // 2 for gain in record.gains().values() if gain is not None
        ]
        for move in record.reputation_moves:
            assert any(reputation_ema(move.old, signal, weight) == move.new for signal in signals), move

    # Folding only up to the block before round 2 opened gives the state the matchmaker saw then.
    before_round_2 = Ledger.from_events(
        events, until_block=ledger.rounds[2].opened_block - 1, initial_reputation=_initial(dev_chain)
    )
    assert list(before_round_2.rounds) == [1]
    assert before_round_2.open_round() is None


def test_ledger_rejects_an_inconsistent_log(dev_chain: DevChain) -> None:
    orgs = register_three(dev_chain)
    open_ring(dev_chain, orgs)
    events = dev_chain.events().read(dev_chain.deployment.deploy_block)
    without_registrations = [event for event in events if event.name != "OrganizationRegistered"]
    with pytest.raises(LedgerError, match="unregistered organization"):
        Ledger.from_events(without_registrations, initial_reputation=_initial(dev_chain))
    with pytest.raises(LedgerError, match="arrived after"):
        Ledger.from_events([*events, events[0]], initial_reputation=_initial(dev_chain))


def test_incremental_fold_equals_a_fold_from_genesis(dev_chain: DevChain, tmp_path: Path) -> None:
    """The replayer folds each event once as it walks forward; at every block its ledger equals a
    fresh fold up to that block, and a step backwards (a doctored inputs block) refolds correctly."""
    orgs = register_three(dev_chain)
    for round_number in (1, 2):
        deadline, pairs = open_ring(dev_chain, orgs)
        for index, (_, student) in enumerate(pairs):
            orgs[index].publish_bundle(round_number, student, cid_of(f"b{round_number}{index}"))
        dev_chain.mine_until(deadline + 1)
        dev_chain.matchmaker().finalize_round(round_number)
    events = dev_chain.events().read(dev_chain.deployment.deploy_block)
    initial = _initial(dev_chain)
    replayer = Replayer(LocalStore(tmp_path / "store"), initial)
    blocks = sorted({event.block_number for event in events})
    for block in [*blocks, blocks[len(blocks) // 2], blocks[-1]]:
        expected = Ledger.from_events(events, until_block=block, initial_reputation=initial)
        assert replayer.ledger_at(events, block) == expected, block
