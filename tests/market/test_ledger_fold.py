"""Known answers for the ledger fold and the reputation rule (pure logic: events written by hand).

A round-protocol v2 history is written out event by event (RoundOpened with its packed pair list,
BundlePublished, GainReported, DisputeOpened, PairSettled with each of its outcomes,
RoundFinalized), and every stake, pending withdrawal, credit, reward, refund, slash and
reputation move it implies is worked out by hand. A change in any handler, in which party a
fee, bond or slash goes to, or in the order of the records shows up as a wrong value.
(`tests/rounds/test_ledger.py` checks the same fold against the contract's own views on a real
Anvil.)
"""

from __future__ import annotations

from typing import Any

import pytest
from web3 import Web3

from chain.client import OrganizationStatus, Outcome, SlashReason
from chain.events import ChainEvent
from chain.merkle import pack_pairs
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


# ---------------------------------------------------------------------------- a v2 round by hand

D = str(Web3.to_checksum_address("0x" + "d" * 40))
FEE, BOND = 3, 7  # distinct, so that a fee taken for a bond (or the reverse) shows
R = 10**17  # reputations below are in tenths of WAD


def _register_four(log: _Log) -> None:
    for address, name in ((A, "a"), (B, "b"), (C, "c"), (D, "d")):
        log.add(
            1,
            "OrganizationRegistered",
            organization=address,
            name=name,
            stake=100,
            profileCid=b"p" + name.encode(),
            encryptionPublicKey=b"k",
        )


def _settled(
    log: _Log,
    block: int,
    index: int,
    outcome: Outcome,
    offender: str,
    slashed: int,
    teacher_reputation: int,
    student_reputation: int,
    verdict: bytes = b"",
) -> None:
    log.add(
        block,
        "PairSettled",
        roundId=1,
        pairIndex=index,
        outcome=int(outcome),
        offender=offender,
        slashed=slashed,
        teacherReputation=teacher_reputation,
        studentReputation=student_reputation,
        verdictCid=verdict,
    )


def _six_outcomes() -> _Log:
    """One round with every way a pair can be settled (the money worked out by hand below).

    pair 0  A -> B  reported: fee 3 to A, 5 credits
    (settled in the order 0, 3, 4, 1, 2, 5; the reputations each settlement names are listed
    with the moves they make in the test below)
    pair 1  B -> C  no bundle: B slashed 10, to C
    pair 2  C -> D  no report: D paid 3 at delivery, slashed 9; C gets 3 + 9
    pair 3  D -> A  defective (disputed, bond 7): A gets 3 + 7 back, D slashed 8 to A
    pair 4  A -> C  unfounded dispute: A gets the fee and C's bond (3 + 7), nobody slashed
    pair 5  B -> D  unresolved dispute: D gets 3 + 7 back
    """
    log = _Log()
    log.add(1, "ParametersUpdated", parameters=_parameters(min_stake=85, exchange_fee=FEE))
    _register_four(log)
    pairs = [(A, B), (B, C), (C, D), (D, A), (A, C), (B, D)]
    log.add(
        2,
        "RoundOpened",
        roundId=1,
        policyDigest=b"\x01" * 32,
        pairsRoot=b"\x02" * 32,
        decisionCid=b"decision",
        publishDeadline=20,
        reportDeadline=30,
        verdictDeadline=40,
        pairCount=6,
        exchangeFee=FEE,
        disputeBond=BOND,
        pairs=pack_pairs(pairs),
    )
    for index in (0, 2, 3, 4, 5):
        teacher, student = pairs[index]
        log.add(
            3,
            "BundlePublished",
            roundId=1,
            teacher=teacher,
            student=student,
            pairIndex=index,
            bundleCid=b"b%d" % index,
        )
    log.add(
        4,
        "GainReported",
        roundId=1,
        teacher=A,
        student=B,
        pairIndex=0,
        gain=2 * R,
        credits=5,
        teacherReputation=6 * R,
        studentReputation=5 * R,
        adapterCid=b"adapter",
    )
    for index in (3, 4, 5):
        teacher, student = pairs[index]
        log.add(
            5,
            "DisputeOpened",
            roundId=1,
            teacher=teacher,
            student=student,
            pairIndex=index,
            bond=BOND,
            evidenceCid=b"e%d" % index,
        )
    _settled(log, 6, 3, Outcome.DEFECTIVE, D, 8, 3 * R, 6 * R, verdict=b"verdict")
    _settled(log, 6, 4, Outcome.UNFOUNDED, C, 0, 6 * R, 4 * R, verdict=b"unfounded")
    _settled(log, 41, 1, Outcome.NO_BUNDLE, B, 10, 4 * R, 5 * R)
    _settled(log, 41, 2, Outcome.NO_REPORT, D, 9, 55 * R // 10, 45 * R // 10)
    _settled(log, 41, 5, Outcome.UNRESOLVED, D, 0, 4 * R, 3 * R)
    log.add(41, "RoundFinalized", roundId=1, finalizer=A, settledNow=3)
    return log


def test_a_round_with_every_outcome_moves_the_money_as_computed_by_hand() -> None:
    log = _six_outcomes()
    ledger = Ledger.from_events(log.events, initial_reputation=5 * R)
    org = ledger.organizations
    # stake: 100 - escrowed fees and bonds + refunds - slashes; pending: fees, bonds and slashes won
    assert (org[A].stake, org[A].pending_withdrawal, org[A].credits) == (100 - 3 - 7 + 10, 3 + 8 + 10, 5)
    assert (org[B].stake, org[B].pending_withdrawal, org[B].credits) == (100 - 3 - 10, 0, 0)
    assert (org[C].stake, org[C].pending_withdrawal, org[C].credits) == (100 - 3 - 7, 10 + 3 + 9, 0)
    assert (org[D].stake, org[D].pending_withdrawal, org[D].credits) == (100 - 3 - 9 - 8 - 3 - 7 + 10, 0, 0)
    assert [(o.stake, o.pending_withdrawal) for o in org.values()] == [(100, 21), (87, 0), (90, 22), (80, 0)]
    assert sum(o.stake + o.pending_withdrawal for o in org.values()) == 400  # nothing made or lost
    assert [o.reputation for o in org.values()] == [6 * R, 4 * R, 55 * R // 10, 3 * R]
    assert ledger.eligible() == [A, B, C]  # D's 80 is below the minimum stake 85

    record = ledger.rounds[1]
    assert [(r.teacher, r.student, r.fee, r.credits) for r in record.rewards] == [
        (A, B, 3, 5),
        (A, C, 10, 0),
        (C, D, 3, 0),
    ]
    assert [(r.student, r.fee) for r in record.refunds] == [(A, 10), (D, 10)]
    assert [(s.offender, s.beneficiary, s.amount, s.reason) for s in record.slashes] == [
        (D, A, 8, SlashReason.DEFECTIVE),
        (B, C, 10, SlashReason.NO_BUNDLE),
        (D, C, 9, SlashReason.NO_REPORT),
    ]
    # only reputations that changed are moves, each from the value it had before
    assert [(m.organization, m.old, m.new) for m in record.reputation_moves] == [
        (A, 5 * R, 6 * R),  # pair 0 (B's 0.5 is unchanged: no move)
        (D, 5 * R, 3 * R),  # pair 3 (A's 0.6 unchanged)
        (C, 5 * R, 4 * R),  # pair 4 (A's 0.6 unchanged)
        (B, 5 * R, 4 * R),  # pair 1
        (C, 4 * R, 5 * R),
        (C, 5 * R, 55 * R // 10),  # pair 2
        (D, 3 * R, 45 * R // 10),
        (D, 45 * R // 10, 3 * R),  # pair 5 (B's 0.4 unchanged)
    ]
    # every reference points at the event that made it
    events = log.events
    by_name = {(e.name, e.args.get("pairIndex")): e for e in events}
    for reward, (name, index) in zip(
        record.rewards, [("GainReported", 0), ("PairSettled", 4), ("PairSettled", 2)], strict=True
    ):
        assert reward.ref == EventRef.of(by_name[(name, index)])
    assert [s.ref for s in record.slashes] == [EventRef.of(by_name[("PairSettled", i)]) for i in (3, 1, 2)]
    assert [r.ref for r in record.refunds] == [EventRef.of(by_name[("PairSettled", i)]) for i in (3, 5)]


def test_a_v2_round_record_holds_what_its_events_said() -> None:
    log = _six_outcomes()
    events = log.events
    ledger = Ledger.from_events(events, initial_reputation=5 * R)
    record = ledger.rounds[1]
    opened = next(e for e in events if e.name == "RoundOpened")
    assert (record.round_id, record.opened_block, record.opened_transaction) == (
        1,
        2,
        opened.transaction_hash,
    )
    assert (record.decision_cid, record.policy_digest, record.pairs_root) == (
        b"decision",
        b"\x01" * 32,
        b"\x02" * 32,
    )
    assert (record.publish_deadline, record.deadline_block, record.verdict_deadline) == (20, 30, 40)
    assert (record.exchange_fee, record.dispute_bond, record.pair_count) == (FEE, BOND, 6)
    assert record.opened == EventRef.of(opened)
    assert record.finalized
    assert record.finalized_block == 41
    assert record.finalized_ref == EventRef.of(events[-1])
    assert ledger.open_round() is None
    assert ledger.finalized_rounds() == [record]
    assert [(p.index, p.teacher, p.student) for p in record.pairs] == [
        (0, A, B),
        (1, B, C),
        (2, C, D),
        (3, D, A),
        (4, A, C),
        (5, B, D),
    ]
    assert all(p.assigned == EventRef.of(opened) for p in record.pairs)
    assert [p.outcome for p in record.pairs] == [
        Outcome.REPORTED,
        Outcome.NO_BUNDLE,
        Outcome.NO_REPORT,
        Outcome.DEFECTIVE,
        Outcome.UNFOUNDED,
        Outcome.UNRESOLVED,
    ]
    assert [p.bundle_cid for p in record.pairs] == [b"b0", None, b"b2", b"b3", b"b4", b"b5"]
    assert [p.evidence_cid for p in record.pairs] == [None, None, None, b"e3", b"e4", b"e5"]
    assert [p.verdict_cid for p in record.pairs] == [None, None, None, b"verdict", b"unfounded", None]
    assert record.gains() == {
        (A, B): 2 * R,
        (B, C): None,
        (C, D): None,
        (D, A): None,
        (A, C): None,
        (B, D): None,
    }
    first = record.pairs[0]
    assert (first.adapter_cid, first.reported, first.settled) == (b"adapter", first.settled, first.reported)
    assert first.reported == EventRef.of(next(e for e in events if e.name == "GainReported"))
    assert first.published == EventRef.of(next(e for e in events if e.name == "BundlePublished"))
    assert record.pairs[1].published is None
    assert record.pairs[1].settled is not None
    assert record.pairs[1].settled.block_number == 41
    assert record.pairs[3].disputed is not None
    assert record.pairs[3].disputed.block_number == 5
    assert record.reward_of(A, B) == record.rewards[0]
    assert record.reward_of(B, A) is None


def test_a_round_before_its_settlements() -> None:
    """Folded up to block 5: fees and bonds are escrowed, one pair is reported, the round is open."""
    ledger = Ledger.from_events(_six_outcomes().events, until_block=5, initial_reputation=5 * R)
    org = ledger.organizations
    assert [o.stake for o in org.values()] == [100 - 3 - 7, 100 - 3, 100 - 3 - 7, 100 - 3 - 3 - 7]
    assert [o.pending_withdrawal for o in org.values()] == [3, 0, 0, 0]
    assert ledger.last_block == 5
    open_round = ledger.open_round()
    assert open_round is ledger.rounds[1]
    assert not open_round.finalized
    assert ledger.finalized_rounds() == []
    assert [r.fee for r in open_round.rewards] == [3]
    assert open_round.refunds == []
    assert open_round.slashes == []


def test_stake_profile_exit_and_withdrawal_events() -> None:
    log = _Log()
    _register_four(log)
    log.add(2, "StakeAdded", organization=A, amount=5, newStake=105)
    log.add(2, "ProfileUpdated", organization=B, profileCid=b"new")
    log.add(3, "ExitRequested", organization=C, availableAtBlock=9)
    log.add(4, "Withdrawn", account=A, amount=0)
    log.add(5, "OrganizationExited", organization=D, stakeReleased=100)
    log.add(6, "Withdrawn", account=D, amount=60)
    log.add(7, "Withdrawn", account="0x" + "e" * 40, amount=1)  # not an organization: ignored
    ledger = Ledger.from_events(log.events, initial_reputation=5 * R)
    org = ledger.organizations
    assert org[A].stake == 105
    assert (org[B].profile_cid, org[A].profile_cid) == (b"new", b"pa")
    assert [o.status for o in org.values()] == [
        OrganizationStatus.ACTIVE,
        OrganizationStatus.ACTIVE,
        OrganizationStatus.EXITING,
        OrganizationStatus.EXITED,
    ]
    assert (org[D].stake, org[D].pending_withdrawal) == (0, 40)
    assert ledger.eligible() == [A, B]
    assert org[C].registered == EventRef.of(log.events[2])
    assert (org[C].name, org[C].registered_block, org[C].encryption_public_key) == ("c", 1, b"k")
    assert org[C].reputation == 5 * R


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (ChainEvent("GainReported", {"roundId": 2, "pairIndex": 0}, 50, "0x", 0), "unopened round 2"),
        (
            ChainEvent("BundlePublished", {"roundId": 1, "pairIndex": 6, "bundleCid": b""}, 50, "0x", 0),
            "no pair 6",
        ),
        (
            ChainEvent(
                "DisputeOpened", {"roundId": 1, "pairIndex": -1, "bond": 1, "evidenceCid": b""}, 50, "0x", 0
            ),
            "no pair -1",
        ),
        (
            ChainEvent("ProfileUpdated", {"organization": "0x" + "e" * 40, "profileCid": b""}, 50, "0x", 0),
            "unregistered",
        ),
    ],
)
def test_events_that_refer_to_nothing_are_refused(event: ChainEvent, message: str) -> None:
    ledger = Ledger.from_events(_six_outcomes().events, initial_reputation=5 * R)
    with pytest.raises(LedgerError, match=message):
        ledger.apply(event)


def test_a_round_naming_an_unregistered_organization_is_refused() -> None:
    log = _Log()
    _register_four(log)
    stranger = str(Web3.to_checksum_address("0x" + "e" * 40))
    opened = ChainEvent(
        "RoundOpened",
        {
            "roundId": 1,
            "policyDigest": b"",
            "pairsRoot": b"",
            "decisionCid": b"",
            "publishDeadline": 1,
            "reportDeadline": 2,
            "verdictDeadline": 3,
            "pairCount": 1,
            "exchangeFee": 0,
            "disputeBond": 0,
            "pairs": pack_pairs([(A, stranger)]),
        },
        2,
        "0x",
        9,
    )
    ledger = Ledger.from_events(log.events, initial_reputation=5 * R)
    with pytest.raises(LedgerError, match="unregistered organization"):
        ledger.apply(opened)


def test_credits_pending_and_reputation_accumulate_over_rounds() -> None:
    """Two rounds, A teaching B in both (fees 3, credits 5 then 7); then B misses a bundle to A, who
    already has money pending; then A exits with its fees pending."""
    log = _Log()
    _register_four(log)

    def opened(block: int, round_id: int, pairs: list[tuple[str, str]]) -> None:
        log.add(
            block,
            "RoundOpened",
            roundId=round_id,
            policyDigest=b"",
            pairsRoot=b"",
            decisionCid=b"",
            publishDeadline=block + 1,
            reportDeadline=block + 2,
            verdictDeadline=block + 3,
            pairCount=len(pairs),
            exchangeFee=FEE,
            disputeBond=BOND,
            pairs=pack_pairs(pairs),
        )

    for round_id, (block, credits, teacher_rep, student_rep) in enumerate(
        [(2, 5, 1 * R, 2 * R), (10, 7, 3 * R, 4 * R)], start=1
    ):
        opened(block, round_id, [(A, B)])
        log.add(block, "BundlePublished", roundId=round_id, teacher=A, student=B, pairIndex=0, bundleCid=b"b")
        log.add(
            block + 1,
            "GainReported",
            roundId=round_id,
            teacher=A,
            student=B,
            pairIndex=0,
            gain=R,
            credits=credits,
            teacherReputation=teacher_rep,
            studentReputation=student_rep,
            adapterCid=b"a",
        )
    opened(20, 3, [(B, A)])
    _settled(log, 25, 0, Outcome.NO_BUNDLE, B, 4, 5 * R, 1 * R)  # teacher B, student A
    log.events[-1].args["roundId"] = 3
    log.add(26, "ExitRequested", organization=A, availableAtBlock=27)
    exited = log.add(27, "OrganizationExited", organization=A, stakeReleased=100)
    ledger = Ledger.from_events(log.events, initial_reputation=0)
    a, b = ledger.organizations[A], ledger.organizations[B]
    assert (a.credits, b.credits) == (12, 0)
    assert (a.stake, a.pending_withdrawal) == (0, 3 + 3 + 4 + 100)  # two fees, B's slash, then the stake
    assert (b.stake, b.pending_withdrawal) == (100 - 3 - 3 - 4, 0)
    assert (a.reputation, b.reputation) == (1 * R, 5 * R)
    assert a.status is OrganizationStatus.EXITED
    assert a.address == A
    assert ledger.organizations[C].address == C
    moves = [(m.organization, m.old, m.new) for r in (1, 2, 3) for m in ledger.rounds[r].reputation_moves]
    assert moves == [
        (A, 0, R),
        (B, 0, 2 * R),
        (A, R, 3 * R),
        (B, 2 * R, 4 * R),
        (B, 4 * R, 5 * R),
        (A, 3 * R, R),
    ]
    # references name the exact event: block, transaction and log index as written
    report = ledger.rounds[2].pairs[0].reported
    assert report == EventRef(11, f"0x{11:064x}", 9)  # the 10th event written
    assert [m.ref for m in ledger.rounds[2].reputation_moves] == [report, report]
    assert ledger.rounds[3].slashes[0].ref == EventRef(25, f"0x{25:064x}", 11)
    assert a.registered == EventRef(1, f"0x{1:064x}", 0)
    assert exited.log_index == 13


def test_a_copy_is_independent() -> None:
    ledger = Ledger.from_events(_six_outcomes().events, initial_reputation=5 * R)
    copied = ledger.copy()
    assert copied is not ledger
    assert copied == ledger
    copied.organizations[A].stake = 0
    copied.rounds[1].pairs[0].gain = None
    assert ledger.organizations[A].stake == 100
    assert ledger.rounds[1].pairs[0].gain == 2 * R
