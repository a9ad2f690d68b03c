"""Known answers for the ledger fold and the reputation rule (pure logic: events written by hand).

The round-protocol v2 events (RoundOpened with its pair list, GainReported, DisputeOpened,
PairSettled) are folded and checked against the contract on a real Anvil in
`tests/rounds/test_ledger.py`; the hand-written round histories here were for the first protocol.

Every number below is computed by hand from the events, so a change in any handler, in the order
checks or in the EMA shows up as a wrong value. (`tests/rounds/test_ledger.py` checks the same fold
against the contract's own views on a real Anvil.)
"""

from __future__ import annotations

from typing import Any

import pytest
from web3 import Web3

from chain.client import OrganizationStatus
from chain.events import ChainEvent
from market.errors import LedgerError, ParametersError
from market.ledger import Ledger, LedgerRound
from market.parameters import BPS, reputation_ema

INITIAL = 5 * 10**17
WAD = 10**18


A, B, C = (str(Web3.to_checksum_address("0x" + digit * 40)) for digit in "abc")


class _Log:
    """Writes events with increasing log indexes, at the block given."""

    def __init__(self) -> None:
        self.events: list[ChainEvent] = []

    def add(self, block: int, event_name: str, /, **args: Any) -> ChainEvent:
        event = ChainEvent(event_name, args, block, f"0x{block:064x}", len(self.events))
        self.events.append(event)
        return event


def _parameters(min_stake: int = 10, exchange_fee: int = 3) -> dict[str, int]:
    return {"minStake": min_stake, "exchangeFee": exchange_fee, "slashBps": 1000}


def test_eligibility_is_at_least_the_minimum_stake() -> None:
    log = _Log()
    log.add(1, "ParametersUpdated", parameters=_parameters(min_stake=12))
    for address, stake in ((A, 11), (B, 12), (C, 13)):
        log.add(
            2,
            "OrganizationRegistered",
            organization=address,
            name="x",
            stake=stake,
            profileCid=b"",
            encryptionPublicKey=b"",
        )
    assert Ledger.from_events(log.events, initial_reputation=INITIAL).eligible() == [B, C]
    no_parameters = Ledger.from_events(log.events[1:], initial_reputation=INITIAL)
    assert no_parameters.eligible() == [A, B, C]  # minStake 0 until parameters are set
    assert no_parameters.parameters == {}


def test_exit_moves_the_stake_to_pending() -> None:
    log = _Log()
    log.add(
        1,
        "OrganizationRegistered",
        organization=A,
        name="a",
        stake=40,
        profileCid=b"",
        encryptionPublicKey=b"",
    )
    log.add(2, "Withdrawn", account=A, amount=0)
    log.add(3, "OrganizationExited", organization=A)
    ledger = Ledger.from_events(log.events, initial_reputation=INITIAL)
    org = ledger.organizations[A]
    assert (org.status, org.stake, org.pending_withdrawal) == (OrganizationStatus.EXITED, 0, 40)
    assert ledger.eligible() == []


def test_events_out_of_order_are_refused() -> None:
    log = _Log()
    log.add(5, "ParametersUpdated", parameters={})
    log.add(5, "ParametersUpdated", parameters={})  # same block is fine
    ledger = Ledger.from_events(log.events, initial_reputation=INITIAL)
    with pytest.raises(LedgerError, match="at block 4 arrived after block 5"):
        ledger.apply(ChainEvent("ParametersUpdated", {"parameters": {}}, 4, "0x", 0))


def test_a_round_record_without_events() -> None:
    record = LedgerRound(1, 1, "0x", b"", b"", 2, 0, 0)
    assert not record.finalized
    assert record.gains() == {}
    assert record.reward_of(A, B) is None


# ---------------------------------------------------------------------------- the reputation rule


@pytest.mark.parametrize(
    ("old", "signal", "weight", "expected"),
    [
        (5 * 10**17, WAD, 2000, 6 * 10**17),  # (0.5 * 8000 + 1 * 2000) / 10000
        (5 * 10**17, 0, 2000, 4 * 10**17),
        (5 * 10**17, WAD, 10_000, WAD),  # full weight: the signal alone
        (5 * 10**17, 0, 1, 499_950_000_000_000_000),
        (7, 0, 5000, 3),  # floor division: 3.5 -> 3
        (7, 1, 5000, 4),
        (1, 2, 3333, 1),  # (6667 + 6666) // 10000
        (0, 0, 1, 0),
    ],
)
def test_reputation_ema_known_answers(old: int, signal: int, weight: int, expected: int) -> None:
    assert reputation_ema(old, signal, weight) == expected


@pytest.mark.parametrize("weight", [0, -1, BPS + 1])
def test_reputation_ema_refuses_a_weight_outside_its_range(weight: int) -> None:
    with pytest.raises(ParametersError, match=r"in \(0, 10000\] basis points"):
        reputation_ema(1, 1, weight)


def test_bps_is_ten_thousand() -> None:
    assert BPS == 10_000


def test_without_parameters_any_stake_is_enough() -> None:
    log = _Log()
    log.add(
        1,
        "OrganizationRegistered",
        organization=A,
        name="a",
        stake=0,
        profileCid=b"",
        encryptionPublicKey=b"",
    )
    assert Ledger.from_events(log.events, initial_reputation=INITIAL).eligible() == [A]
