"""Known answers for the ledger fold and the reputation rule (pure logic: events written by hand).

Every number below is computed by hand from the events, so a change in any handler, in the order
checks or in the EMA shows up as a wrong value. (`tests/rounds/test_ledger.py` checks the same fold
against the contract's own views on a real Anvil.)
"""

from __future__ import annotations

from typing import Any

import pytest
from web3 import Web3

from chain.client import OrganizationStatus, SlashReason
from chain.events import ChainEvent
from market.errors import LedgerError, ParametersError
from market.ledger import EventRef, Ledger, LedgerRound
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


def _history() -> _Log:
    log = _Log()
    log.add(1, "ParametersUpdated", parameters=_parameters())
    log.add(
        2,
        "OrganizationRegistered",
        organization=A.lower(),
        name="a",
        stake=100,
        profileCid=b"pa",
        encryptionPublicKey=b"ka",
    )
    log.add(
        2,
        "OrganizationRegistered",
        organization=B,
        name="b",
        stake=50,
        profileCid=b"pb",
        encryptionPublicKey=b"kb",
    )
    log.add(
        3,
        "OrganizationRegistered",
        organization=C,
        name="c",
        stake=9,
        profileCid=b"pc",
        encryptionPublicKey=b"kc",
    )
    log.add(4, "ProfileUpdated", organization=B, profileCid=b"pb2")
    log.add(4, "StakeAdded", organization=C, newStake=12)
    log.add(
        5,
        "RoundOpened",
        roundId=1,
        decisionCid=b"d1",
        policyDigest=b"\x01" * 32,
        deadlineBlock=9,
        pairCount=2,
    )
    log.add(5, "PairAssigned", roundId=1, pairIndex=0, teacher=A, student=B)
    log.add(5, "PairAssigned", roundId=1, pairIndex=1, teacher=B, student=A)
    log.add(6, "BundlePublished", roundId=1, student=B, bundleCid=b"b0")
    log.add(6, "BundlePublished", roundId=1, student=A, bundleCid=b"b1")
    log.add(7, "GainReported", roundId=1, student=B, gain=WAD // 10, adapterCid=b"a0")
    log.add(10, "RewardPaid", roundId=1, teacher=A, student=B, fee=3, credits=7 * WAD)
    log.add(10, "FeeRefunded", roundId=1, student=B, fee=3)
    log.add(10, "Slashed", roundId=1, offender=A, beneficiary=B, amount=10, reason=int(SlashReason.NO_REPORT))
    log.add(
        10, "ReputationUpdated", roundId=1, organization=A, oldReputation=INITIAL, newReputation=6 * 10**17
    )
    log.add(
        10, "ReputationUpdated", roundId=1, organization=B, oldReputation=INITIAL, newReputation=4 * 10**17
    )
    log.add(10, "RoundFinalized", roundId=1)
    log.add(
        11,
        "RoundOpened",
        roundId=2,
        decisionCid=b"d2",
        policyDigest=b"\x02" * 32,
        deadlineBlock=20,
        pairCount=0,
    )
    log.add(12, "ExitRequested", organization=C)
    log.add(13, "Withdrawn", account=B, amount=5)
    log.add(13, "Withdrawn", account="0x" + "dd" * 20, amount=1)  # not an organization: ignored
    log.add(14, "RoleGranted", role=b"r", account=A, sender=A)  # not a ledger event: ignored
    return log


@pytest.fixture
def ledger() -> Ledger:
    return Ledger.from_events(_history().events, initial_reputation=INITIAL)


def test_registration_and_profile_and_stake(ledger: Ledger) -> None:
    a, b, c = (ledger.organizations[key] for key in (A, B, C))
    assert list(ledger.organizations) == [A, B, C]  # registration order, checksummed keys
    assert (a.name, a.profile_cid, a.encryption_public_key, a.registered_block) == ("a", b"pa", b"ka", 2)
    assert a.registered == EventRef(2, f"0x{2:064x}", 1)
    assert b.profile_cid == b"pb2"
    assert c.stake == 12
    assert c.status is OrganizationStatus.EXITING
    assert (a.status, b.status) == (OrganizationStatus.ACTIVE, OrganizationStatus.ACTIVE)
    assert ledger.parameters == _parameters()
    assert ledger.last_block == 14


def test_settlement_moves_every_amount(ledger: Ledger) -> None:
    a, b = ledger.organizations[A], ledger.organizations[B]
    # a: 100 - 3 (fee escrowed as student) - 10 (slashed); pending: 3 (fee) ; credits 7 WAD
    assert (a.stake, a.pending_withdrawal, a.credits, a.reputation) == (87, 3, 7 * WAD, 6 * 10**17)
    # b: 50 - 3 (escrow) + 3 (refund); pending: 10 (slash) - 5 (withdrawn)
    assert (b.stake, b.pending_withdrawal, b.credits, b.reputation) == (50, 5, 0, 4 * 10**17)
    assert ledger.organizations[C].reputation == INITIAL
    assert ledger.organizations[C].credits == 0


def test_round_records(ledger: Ledger) -> None:
    first = ledger.rounds[1]
    assert (first.opened_block, first.deadline_block, first.pair_count, first.exchange_fee) == (5, 9, 2, 3)
    assert (first.decision_cid, first.policy_digest, first.opened_transaction) == (
        b"d1",
        b"\x01" * 32,
        f"0x{5:064x}",
    )
    assert first.opened == EventRef(5, f"0x{5:064x}", 6)
    assert [(p.index, p.teacher, p.student) for p in first.pairs] == [(0, A, B), (1, B, A)]
    ab, ba = first.pairs
    assert (ab.bundle_cid, ab.gain, ab.adapter_cid) == (b"b0", WAD // 10, b"a0")
    assert (ba.bundle_cid, ba.gain, ba.adapter_cid) == (b"b1", None, None)
    assert ab.assigned == EventRef(5, f"0x{5:064x}", 7)
    assert ab.published == EventRef(6, f"0x{6:064x}", 9)
    assert ab.reported == EventRef(7, f"0x{7:064x}", 11)
    assert ba.reported is None
    assert first.gains() == {(A, B): WAD // 10, (B, A): None}
    reward = first.reward_of(A, B)
    assert reward is not None
    assert (reward.teacher, reward.student, reward.fee, reward.credits) == (A, B, 3, 7 * WAD)
    assert reward.ref == EventRef(10, f"0x{10:064x}", 12)
    assert first.reward_of(B, A) is None
    assert [(r.student, r.fee) for r in first.refunds] == [(B, 3)]
    assert [(s.offender, s.beneficiary, s.amount, s.reason) for s in first.slashes] == [
        (A, B, 10, SlashReason.NO_REPORT)
    ]
    assert [(m.organization, m.old, m.new) for m in first.reputation_moves] == [
        (A, INITIAL, 6 * 10**17),
        (B, INITIAL, 4 * 10**17),
    ]
    assert first.finalized
    assert first.finalized_block == 10
    assert first.finalized_ref == EventRef(10, f"0x{10:064x}", 17)


def test_questions(ledger: Ledger) -> None:
    assert ledger.eligible() == [A, B]  # c is exiting
    open_round = ledger.open_round()
    assert open_round is not None
    assert open_round.round_id == 2
    assert not open_round.finalized
    assert [r.round_id for r in ledger.finalized_rounds()] == [1]


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


def test_without_parameters_the_fee_is_zero() -> None:
    log = _Log()
    log.add(
        1,
        "OrganizationRegistered",
        organization=A,
        name="a",
        stake=5,
        profileCid=b"",
        encryptionPublicKey=b"",
    )
    log.add(2, "RoundOpened", roundId=1, decisionCid=b"", policyDigest=b"", deadlineBlock=3, pairCount=1)
    log.add(2, "PairAssigned", roundId=1, pairIndex=0, teacher=A, student=A)
    ledger = Ledger.from_events(log.events, initial_reputation=INITIAL)
    assert ledger.rounds[1].exchange_fee == 0
    assert ledger.organizations[A].stake == 5
    assert ledger.open_round() is ledger.rounds[1]
    assert ledger.finalized_rounds() == []


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


def test_until_block_stops_the_fold_and_sets_last_block() -> None:
    events = _history().events
    at_five = Ledger.from_events(events, until_block=5, initial_reputation=INITIAL)
    assert set(at_five.rounds) == {1}
    assert len(at_five.rounds[1].pairs) == 2
    assert at_five.rounds[1].pairs[0].bundle_cid is None
    assert at_five.last_block == 5
    assert at_five.organizations[C].stake == 12
    late = Ledger.from_events(events, until_block=100, initial_reputation=INITIAL)
    assert late.last_block == 100
    early = Ledger.from_events(events, until_block=0, initial_reputation=INITIAL)
    assert (early.organizations, early.rounds, early.last_block) == ({}, {}, 0)
    assert Ledger.from_events([], initial_reputation=INITIAL).last_block == -1


def test_copy_is_deep(ledger: Ledger) -> None:
    copied = ledger.copy()
    copied.organizations[A].stake = 1
    copied.rounds[1].pairs.clear()
    assert ledger.organizations[A].stake == 87
    assert len(ledger.rounds[1].pairs) == 2


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("StakeAdded", {"organization": C, "newStake": 1}, "unregistered organization"),
        ("PairAssigned", {"roundId": 7, "pairIndex": 0, "teacher": A, "student": B}, "unopened round 7"),
        ("BundlePublished", {"roundId": 1, "student": A, "bundleCid": b""}, "no pair with student"),
        ("RoundFinalized", {"roundId": 3}, "unopened round 3"),
    ],
)
def test_inconsistent_events_are_refused(name: str, args: dict[str, Any], message: str) -> None:
    log = _Log()
    for address in (A, B):
        log.add(
            1,
            "OrganizationRegistered",
            organization=address,
            name="x",
            stake=5,
            profileCid=b"",
            encryptionPublicKey=b"",
        )
    log.add(2, "RoundOpened", roundId=1, decisionCid=b"", policyDigest=b"", deadlineBlock=3, pairCount=1)
    log.add(2, "PairAssigned", roundId=1, pairIndex=0, teacher=A, student=B)
    log.add(3, name, **args)
    with pytest.raises(LedgerError, match=message):
        Ledger.from_events(log.events, initial_reputation=INITIAL)


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


def test_amounts_accumulate_and_every_record_keeps_its_event() -> None:
    log = _Log()
    for address in (A, B):
        log.add(
            1,
            "OrganizationRegistered",
            organization=address,
            name="x",
            stake=100,
            profileCid=b"",
            encryptionPublicKey=b"",
        )
    log.add(2, "RoundOpened", roundId=1, decisionCid=b"", policyDigest=b"", deadlineBlock=3, pairCount=2)
    log.add(4, "RewardPaid", roundId=1, teacher=A, student=B, fee=3, credits=2 * WAD)
    log.add(4, "RewardPaid", roundId=1, teacher=A, student=B, fee=4, credits=5 * WAD)
    log.add(4, "Slashed", roundId=1, offender=B, beneficiary=A, amount=10, reason=int(SlashReason.NO_BUNDLE))
    log.add(4, "FeeRefunded", roundId=1, student=B, fee=2)
    log.add(4, "ReputationUpdated", roundId=1, organization=A, oldReputation=INITIAL, newReputation=1)
    log.add(5, "Withdrawn", account=A, amount=2)
    log.add(6, "OrganizationExited", organization=A)
    ledger = Ledger.from_events(log.events, initial_reputation=INITIAL)
    a, b = ledger.organizations[A], ledger.organizations[B]
    assert a.address == A
    assert a.credits == 7 * WAD  # 2 + 5
    assert a.pending_withdrawal == 3 + 4 + 10 - 2 + 100  # fees, slash, withdrawn, then the stake on exit
    assert (b.stake, b.pending_withdrawal) == (100 - 10 + 2, 0)
    record = ledger.rounds[1]
    assert [r.ref for r in record.rewards] == [EventRef(4, f"0x{4:064x}", 3), EventRef(4, f"0x{4:064x}", 4)]
    assert [s.ref for s in record.slashes] == [EventRef(4, f"0x{4:064x}", 5)]
    assert [(s.reason, s.offender) for s in record.slashes] == [(SlashReason.NO_BUNDLE, B)]
    assert [r.ref for r in record.refunds] == [EventRef(4, f"0x{4:064x}", 6)]
    assert [m.ref for m in record.reputation_moves] == [EventRef(4, f"0x{4:064x}", 7)]


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
