"""The market's state rebuilt from its public event log alone.

The matchmaker and every auditor derive what they need (who was registered and eligible at a given
block, their profile CIDs, reputation and credits, every round's pairs and reported gains) by
folding the contract's events in chain order. Nothing here trusts a cache or the matchmaker: the
fold is a pure function of the events, and a test checks it against the contract's own views.

Historical contract reads are not an option: Anvil runs with `--prune-history`, and public RPC
endpoints rarely serve archive state. Events are always available.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field

from chain.client import MarketClient, OrganizationStatus, Outcome, SlashReason
from chain.events import ChainEvent, EventReader
from chain.merkle import unpack_pairs
from exchange.schema import checksum_address
from market.errors import LedgerError
from market.follower import EventCache, ResetGuard, chain_key
from market.parameters import read_constants

__all__ = [
    "EventRef",
    "Ledger",
    "LedgerError",
    "LedgerFollower",
    "LedgerOrganization",
    "LedgerPair",
    "LedgerRound",
    "OrganizationStatus",
    "RefundRecord",
    "ReputationMove",
    "RewardRecord",
    "SlashRecord",
]


@dataclass(frozen=True)
class EventRef:
    """Where an event is on chain (block, transaction, log index): what a viewer links to."""

    block_number: int
    transaction_hash: str
    log_index: int

    @classmethod
    def of(cls, event: ChainEvent) -> EventRef:
        return cls(event.block_number, event.transaction_hash, event.log_index)


@dataclass
class LedgerOrganization:
    """An organization as the event log describes it (wei and WAD integers, as on chain)."""

    address: str
    name: str
    status: OrganizationStatus
    stake: int
    reputation: int
    credits: int
    profile_cid: bytes
    encryption_public_key: bytes
    registered_block: int
    pending_withdrawal: int = 0
    registered: EventRef | None = None


@dataclass
class LedgerPair:
    index: int
    teacher: str
    student: str
    bundle_cid: bytes | None = None
    gain: int | None = None
    adapter_cid: bytes | None = None
    assigned: EventRef | None = None
    published: EventRef | None = None
    reported: EventRef | None = None
    evidence_cid: bytes | None = None
    disputed: EventRef | None = None
    outcome: Outcome | None = None
    verdict_cid: bytes | None = None
    settled: EventRef | None = None


@dataclass(frozen=True)
class RewardRecord:
    """A teacher's fee (and bond of an unfounded dispute) and credits for a delivered bundle."""

    teacher: str
    student: str
    fee: int
    credits: int
    ref: EventRef


@dataclass(frozen=True)
class RefundRecord:
    """A student's escrowed fee (and dispute bond) given back: defective bundle or no verdict."""

    student: str
    fee: int
    ref: EventRef


@dataclass(frozen=True)
class SlashRecord:
    """Stake moved from an offender to its counterparty (`PairSettled` with a slash)."""

    offender: str
    beneficiary: str
    amount: int
    reason: SlashReason
    ref: EventRef


@dataclass(frozen=True)
class ReputationMove:
    """One reputation update at a pair's settlement (`GainReported` or `PairSettled`, WAD)."""

    organization: str
    old: int
    new: int
    ref: EventRef


@dataclass
class LedgerRound:
    round_id: int
    opened_block: int
    opened_transaction: str
    decision_cid: bytes
    policy_digest: bytes
    deadline_block: int
    exchange_fee: int
    pair_count: int
    publish_deadline: int = 0
    verdict_deadline: int = 0
    dispute_bond: int = 0
    pairs_root: bytes = b""
    pairs: list[LedgerPair] = field(default_factory=list)
    finalized_block: int | None = None
    opened: EventRef | None = None
    finalized_ref: EventRef | None = None
    rewards: list[RewardRecord] = field(default_factory=list)
    refunds: list[RefundRecord] = field(default_factory=list)
    slashes: list[SlashRecord] = field(default_factory=list)
    reputation_moves: list[ReputationMove] = field(default_factory=list)

    @property
    def finalized(self) -> bool:
        return self.finalized_block is not None

    def gains(self) -> dict[tuple[str, str], int | None]:
        """Reported gain (WAD) per directed pair; None where the student did not report."""
        return {(pair.teacher, pair.student): pair.gain for pair in self.pairs}

    def reward_of(self, teacher: str, student: str) -> RewardRecord | None:
        return next((r for r in self.rewards if (r.teacher, r.student) == (teacher, student)), None)


@dataclass
class Ledger:
    """Market state after folding events up to `last_block` (inclusive)."""

    initial_reputation: int
    parameters: dict[str, int] = field(default_factory=dict)
    organizations: dict[str, LedgerOrganization] = field(default_factory=dict)
    rounds: dict[int, LedgerRound] = field(default_factory=dict)
    last_block: int = -1

    @classmethod
    def from_events(
        cls, events: Iterable[ChainEvent], until_block: int | None = None, *, initial_reputation: int
    ) -> Ledger:
        """Fold `events` (chain order) up to and including block `until_block` (all when None).

        `initial_reputation` is the contract's constant (`market.parameters.read_constants`): a
        registration event does not repeat it.
        """
        ledger = cls(initial_reputation=initial_reputation)
        for event in events:
            if until_block is not None and event.block_number > until_block:
                break
            ledger.apply(event)
        if until_block is not None:
            ledger.last_block = max(ledger.last_block, until_block)
        return ledger

    def copy(self) -> Ledger:
        return copy.deepcopy(self)

    # ------------------------------------------------------------------ folding

    def _org(self, address: str) -> LedgerOrganization:
        key = checksum_address(address)
        if key not in self.organizations:
            raise LedgerError(f"event refers to unregistered organization {key}")
        return self.organizations[key]

    def _round(self, round_id: int) -> LedgerRound:
        if round_id not in self.rounds:
            raise LedgerError(f"event refers to unopened round {round_id}")
        return self.rounds[round_id]

    def _credit(self, address: str, amount: int) -> None:
        self._org(address).pending_withdrawal += amount

    def apply(self, event: ChainEvent) -> None:
        """Fold one event. Unknown event names (e.g. role events) are ignored."""
        if event.block_number < self.last_block:
            raise LedgerError(f"event at block {event.block_number} arrived after block {self.last_block}")
        self.last_block = event.block_number
        handler = getattr(self, f"_on_{event.name}", None)
        if handler is not None:
            handler(event)

    def _on_ParametersUpdated(self, event: ChainEvent) -> None:  # noqa: N802 - event names are CamelCase
        self.parameters = {str(key): int(value) for key, value in event.args["parameters"].items()}

    def _on_OrganizationRegistered(self, event: ChainEvent) -> None:  # noqa: N802
        address = checksum_address(event.args["organization"])
        self.organizations[address] = LedgerOrganization(
            address=address,
            name=str(event.args["name"]),
            status=OrganizationStatus.ACTIVE,
            stake=int(event.args["stake"]),
            reputation=self.initial_reputation,
            credits=0,
            profile_cid=bytes(event.args["profileCid"]),
            encryption_public_key=bytes(event.args["encryptionPublicKey"]),
            registered_block=event.block_number,
            registered=EventRef.of(event),
        )

    def _on_ProfileUpdated(self, event: ChainEvent) -> None:  # noqa: N802
        self._org(event.args["organization"]).profile_cid = bytes(event.args["profileCid"])

    def _on_StakeAdded(self, event: ChainEvent) -> None:  # noqa: N802
        self._org(event.args["organization"]).stake = int(event.args["newStake"])

    def _on_ExitRequested(self, event: ChainEvent) -> None:  # noqa: N802
        self._org(event.args["organization"]).status = OrganizationStatus.EXITING

    def _on_OrganizationExited(self, event: ChainEvent) -> None:  # noqa: N802
        org = self._org(event.args["organization"])
        org.status = OrganizationStatus.EXITED
        org.pending_withdrawal += org.stake
        org.stake = 0

    def _on_Withdrawn(self, event: ChainEvent) -> None:  # noqa: N802
        account = checksum_address(event.args["account"])
        if account in self.organizations:
            self.organizations[account].pending_withdrawal -= int(event.args["amount"])

    def _on_RoundOpened(self, event: ChainEvent) -> None:  # noqa: N802
        """A round and its pairs (the event's packed list); no fee moves until a bundle arrives."""
        round_id = int(event.args["roundId"])
        record = LedgerRound(
            round_id=round_id,
            opened_block=event.block_number,
            opened_transaction=event.transaction_hash,
            decision_cid=bytes(event.args["decisionCid"]),
            policy_digest=bytes(event.args["policyDigest"]),
            deadline_block=int(event.args["reportDeadline"]),
            exchange_fee=int(event.args["exchangeFee"]),
            pair_count=int(event.args["pairCount"]),
            publish_deadline=int(event.args["publishDeadline"]),
            verdict_deadline=int(event.args["verdictDeadline"]),
            dispute_bond=int(event.args["disputeBond"]),
            pairs_root=bytes(event.args["pairsRoot"]),
            opened=EventRef.of(event),
        )
        for index, (teacher, student) in enumerate(unpack_pairs(bytes(event.args["pairs"]))):
            self._org(teacher), self._org(student)  # both must be registered
            record.pairs.append(LedgerPair(index, teacher, student, assigned=EventRef.of(event)))
        self.rounds[round_id] = record

    def _pair(self, event: ChainEvent) -> LedgerPair:
        round_record = self._round(int(event.args["roundId"]))
        index = int(event.args["pairIndex"])
        if not 0 <= index < len(round_record.pairs):
            raise LedgerError(f"round {round_record.round_id} has no pair {index}")
        return round_record.pairs[index]

    def _move(self, round_record: LedgerRound, organization: str, new: int, event: ChainEvent) -> None:
        org = self._org(organization)
        if new != org.reputation:
            round_record.reputation_moves.append(
                ReputationMove(organization, org.reputation, new, EventRef.of(event))
            )
        org.reputation = new

    def _on_BundlePublished(self, event: ChainEvent) -> None:  # noqa: N802
        pair = self._pair(event)
        pair.bundle_cid = bytes(event.args["bundleCid"])
        pair.published = EventRef.of(event)
        self._org(pair.student).stake -= self._round(int(event.args["roundId"])).exchange_fee  # escrowed

    def _on_GainReported(self, event: ChainEvent) -> None:  # noqa: N802
        """A report settles its pair: the fee goes to the teacher with its (pair-decayed) credits."""
        round_record = self._round(int(event.args["roundId"]))
        pair = self._pair(event)
        pair.gain = int(event.args["gain"])
        pair.adapter_cid = bytes(event.args["adapterCid"])
        pair.reported = pair.settled = EventRef.of(event)
        pair.outcome = Outcome.REPORTED
        fee, credits = round_record.exchange_fee, int(event.args["credits"])
        self._credit(pair.teacher, fee)
        self._org(pair.teacher).credits += credits
        round_record.rewards.append(
            RewardRecord(pair.teacher, pair.student, fee, credits, EventRef.of(event))
        )
        self._move(round_record, pair.teacher, int(event.args["teacherReputation"]), event)
        self._move(round_record, pair.student, int(event.args["studentReputation"]), event)

    def _on_DisputeOpened(self, event: ChainEvent) -> None:  # noqa: N802
        pair = self._pair(event)
        pair.evidence_cid = bytes(event.args["evidenceCid"])
        pair.disputed = EventRef.of(event)
        self._org(pair.student).stake -= int(event.args["bond"])

    def _on_PairSettled(self, event: ChainEvent) -> None:  # noqa: N802
        """Settlement other than by a report, by KnexaMarket's rules (docs/threat-model.md)."""
        round_record = self._round(int(event.args["roundId"]))
        pair = self._pair(event)
        outcome = Outcome(int(event.args["outcome"]))
        pair.outcome = outcome
        pair.settled = EventRef.of(event)
        if event.args["verdictCid"]:
            pair.verdict_cid = bytes(event.args["verdictCid"])
        teacher, student = self._org(pair.teacher), self._org(pair.student)
        fee, bond, slashed = round_record.exchange_fee, round_record.dispute_bond, int(event.args["slashed"])
        ref = EventRef.of(event)
        if outcome is Outcome.NO_BUNDLE:
            teacher.stake -= slashed
            student.pending_withdrawal += slashed
        elif outcome is Outcome.NO_REPORT:
            teacher.pending_withdrawal += fee + slashed
            student.stake -= slashed
            round_record.rewards.append(RewardRecord(pair.teacher, pair.student, fee, 0, ref))
        elif outcome is Outcome.DEFECTIVE:
            student.stake += fee + bond
            teacher.stake -= slashed
            student.pending_withdrawal += slashed
            round_record.refunds.append(RefundRecord(pair.student, fee + bond, ref))
        elif outcome is Outcome.UNFOUNDED:
            teacher.pending_withdrawal += fee + bond
            round_record.rewards.append(RewardRecord(pair.teacher, pair.student, fee + bond, 0, ref))
        elif outcome is Outcome.UNRESOLVED:
            student.stake += fee + bond
            round_record.refunds.append(RefundRecord(pair.student, fee + bond, ref))
        if slashed:
            reason = {
                Outcome.NO_BUNDLE: SlashReason.NO_BUNDLE,
                Outcome.NO_REPORT: SlashReason.NO_REPORT,
                Outcome.DEFECTIVE: SlashReason.DEFECTIVE,
            }[outcome]
            offender = checksum_address(event.args["offender"])
            beneficiary = pair.student if offender == pair.teacher else pair.teacher
            round_record.slashes.append(SlashRecord(offender, beneficiary, slashed, reason, ref))
        self._move(round_record, pair.teacher, int(event.args["teacherReputation"]), event)
        self._move(round_record, pair.student, int(event.args["studentReputation"]), event)

    def _on_RoundFinalized(self, event: ChainEvent) -> None:  # noqa: N802
        round_record = self._round(int(event.args["roundId"]))
        round_record.finalized_block = event.block_number
        round_record.finalized_ref = EventRef.of(event)

    # ------------------------------------------------------------------ questions

    def eligible(self) -> list[str]:
        """Organizations the contract would accept in a pair now: active with at least `minStake`.

        In registration order (the event order), which is also a stable tie-break for callers.
        """
        min_stake = self.parameters.get("minStake", 0)
        return [
            address
            for address, org in self.organizations.items()
            if org.status is OrganizationStatus.ACTIVE and org.stake >= min_stake
        ]

    def open_round(self) -> LedgerRound | None:
        """The round not finalized yet, if any. The contract opens a round only when none is open
        and ids count up, so it can only be the latest: O(1), not a walk over the history."""
        if not self.rounds:
            return None
        latest = self.rounds[next(reversed(self.rounds))]
        return None if latest.finalized else latest

    def finalized_rounds(self) -> list[LedgerRound]:
        return [self.rounds[key] for key in sorted(self.rounds) if self.rounds[key].finalized]


class LedgerFollower:
    """Follows a market's event log incrementally: each event is read once and folded once.

    `sync` returns the follower's own ledger, updated in place by the next `sync`; take a `copy()`
    to keep a view of the past.
    """

    def __init__(self, market: MarketClient, from_block: int, cache: EventCache | None = None) -> None:
        """With `cache`, the events read are kept on disk and a restarted follower resumes from them
        (after checking, at the first `sync`, that the chain is still the one they came from)."""
        self.market = market
        self.from_block = from_block
        self._reader = EventReader(market.w3, market.contract)
        self._guard = ResetGuard(market)
        self._cache: EventCache | None = None
        self._events: list[ChainEvent] = []
        self._read_through = from_block - 1
        self._ledger: Ledger
        self._start_clean()
        self._cache = cache
        if cache is not None:
            key = chain_key(market, from_block)
            cached = cache.load(key)
            if cached is None:
                cache.start(key)
            else:
                events, through, through_hash = cached
                for event in events:
                    self._ledger.apply(event)
                self._events, self._read_through = events, through
                self._guard.remember(through, through_hash)

    def _start_clean(self) -> None:
        ledger = Ledger(initial_reputation=read_constants(self.market).initial_reputation)  # may raise
        if self._cache is not None:
            self._cache.start(chain_key(self.market, self.from_block))
        self._events = []
        self._read_through = self.from_block - 1
        self._ledger = ledger

    @property
    def resets(self) -> int:
        """How many times the chain was found reset (or reorganised) and the follower started clean."""
        return self._guard.resets

    @property
    def events(self) -> list[ChainEvent]:
        return self._events

    @property
    def read_through(self) -> int:
        """The last block whose events are folded."""
        return self._read_through

    def sync(self) -> tuple[Ledger, int]:
        """Read events up to the current block; returns the ledger folded up to it and that block."""
        head = self.market.block_number()
        changed = self._guard.changed(head)
        if changed is not None:
            self._start_clean()  # if the new chain cannot be read yet, the next sync detects it again
            self._guard.reset(changed)
        if head > self._read_through:
            new_events = self._reader.read(self._read_through + 1, head)
            for event in new_events:
                self._ledger.apply(event)
            self._events += new_events
            self._read_through = head
            through_hash = self._guard.remember(head)
            if self._cache is not None:
                self._cache.append(new_events, head, through_hash)
        self._ledger.last_block = max(self._ledger.last_block, head)
        return self._ledger, head
