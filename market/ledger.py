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
from enum import Enum

from web3 import Web3

from chain.client import MarketClient
from chain.events import ChainEvent, EventReader

INITIAL_REPUTATION = 10**18 // 2


class LedgerError(ValueError):
    """The event log is inconsistent (an event refers to an unknown organization or round)."""


class OrgStatus(Enum):
    ACTIVE = "active"
    EXITING = "exiting"
    EXITED = "exited"


@dataclass
class OrgRecord:
    """An organization as the event log describes it (wei and WAD integers, as on chain)."""

    address: str
    name: str
    status: OrgStatus
    stake: int
    reputation: int
    credits: int
    profile_cid: bytes
    encryption_public_key: bytes
    registered_block: int
    pending_withdrawal: int = 0


@dataclass
class PairRecord:
    index: int
    teacher: str
    student: str
    bundle_cid: bytes | None = None
    gain: int | None = None
    adapter_cid: bytes | None = None


@dataclass
class RoundRecord:
    round_id: int
    opened_block: int
    opened_transaction: str
    decision_cid: bytes
    policy_digest: bytes
    deadline_block: int
    exchange_fee: int
    pair_count: int
    pairs: list[PairRecord] = field(default_factory=list)
    finalized_block: int | None = None

    @property
    def finalized(self) -> bool:
        return self.finalized_block is not None

    def gains(self) -> dict[tuple[str, str], int | None]:
        """Reported gain (WAD) per directed pair; None where the student did not report."""
        return {(pair.teacher, pair.student): pair.gain for pair in self.pairs}


@dataclass
class Ledger:
    """Market state after folding events up to `last_block` (inclusive)."""

    parameters: dict[str, int] = field(default_factory=dict)
    organizations: dict[str, OrgRecord] = field(default_factory=dict)
    rounds: dict[int, RoundRecord] = field(default_factory=dict)
    last_block: int = -1

    @classmethod
    def from_events(cls, events: Iterable[ChainEvent], until_block: int | None = None) -> Ledger:
        """Fold `events` (chain order) up to and including block `until_block` (all when None)."""
        ledger = cls()
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

    def _org(self, address: str) -> OrgRecord:
        key = Web3.to_checksum_address(address)
        if key not in self.organizations:
            raise LedgerError(f"event refers to unregistered organization {key}")
        return self.organizations[key]

    def _round(self, round_id: int) -> RoundRecord:
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
        address = Web3.to_checksum_address(event.args["organization"])
        self.organizations[address] = OrgRecord(
            address=address,
            name=str(event.args["name"]),
            status=OrgStatus.ACTIVE,
            stake=int(event.args["stake"]),
            reputation=INITIAL_REPUTATION,
            credits=0,
            profile_cid=bytes(event.args["profileCid"]),
            encryption_public_key=bytes(event.args["encryptionPublicKey"]),
            registered_block=event.block_number,
        )

    def _on_ProfileUpdated(self, event: ChainEvent) -> None:  # noqa: N802
        self._org(event.args["organization"]).profile_cid = bytes(event.args["profileCid"])

    def _on_StakeAdded(self, event: ChainEvent) -> None:  # noqa: N802
        self._org(event.args["organization"]).stake = int(event.args["newStake"])

    def _on_ExitRequested(self, event: ChainEvent) -> None:  # noqa: N802
        self._org(event.args["organization"]).status = OrgStatus.EXITING

    def _on_OrganizationExited(self, event: ChainEvent) -> None:  # noqa: N802
        org = self._org(event.args["organization"])
        org.status = OrgStatus.EXITED
        org.pending_withdrawal += org.stake
        org.stake = 0

    def _on_Withdrawn(self, event: ChainEvent) -> None:  # noqa: N802
        account = Web3.to_checksum_address(event.args["account"])
        if account in self.organizations:
            self.organizations[account].pending_withdrawal -= int(event.args["amount"])

    def _on_RoundOpened(self, event: ChainEvent) -> None:  # noqa: N802
        round_id = int(event.args["roundId"])
        self.rounds[round_id] = RoundRecord(
            round_id=round_id,
            opened_block=event.block_number,
            opened_transaction=event.transaction_hash,
            decision_cid=bytes(event.args["decisionCid"]),
            policy_digest=bytes(event.args["policyDigest"]),
            deadline_block=int(event.args["deadlineBlock"]),
            exchange_fee=self.parameters.get("exchangeFee", 0),
            pair_count=int(event.args["pairCount"]),
        )

    def _on_PairAssigned(self, event: ChainEvent) -> None:  # noqa: N802
        round_record = self._round(int(event.args["roundId"]))
        teacher = Web3.to_checksum_address(event.args["teacher"])
        student = Web3.to_checksum_address(event.args["student"])
        round_record.pairs.append(PairRecord(int(event.args["pairIndex"]), teacher, student))
        self._org(student).stake -= round_record.exchange_fee  # the fee is escrowed from the stake

    def _pair(self, event: ChainEvent) -> PairRecord:
        round_record = self._round(int(event.args["roundId"]))
        student = Web3.to_checksum_address(event.args["student"])
        for pair in round_record.pairs:
            if pair.student == student:
                return pair
        raise LedgerError(f"round {round_record.round_id} has no pair with student {student}")

    def _on_BundlePublished(self, event: ChainEvent) -> None:  # noqa: N802
        self._pair(event).bundle_cid = bytes(event.args["bundleCid"])

    def _on_GainReported(self, event: ChainEvent) -> None:  # noqa: N802
        pair = self._pair(event)
        pair.gain = int(event.args["gain"])
        pair.adapter_cid = bytes(event.args["adapterCid"])

    def _on_RewardPaid(self, event: ChainEvent) -> None:  # noqa: N802
        self._credit(event.args["teacher"], int(event.args["fee"]))
        self._org(event.args["teacher"]).credits += int(event.args["credits"])

    def _on_FeeRefunded(self, event: ChainEvent) -> None:  # noqa: N802
        self._org(event.args["student"]).stake += int(event.args["fee"])

    def _on_Slashed(self, event: ChainEvent) -> None:  # noqa: N802
        amount = int(event.args["amount"])
        self._org(event.args["offender"]).stake -= amount
        self._credit(event.args["beneficiary"], amount)

    def _on_ReputationUpdated(self, event: ChainEvent) -> None:  # noqa: N802
        self._org(event.args["organization"]).reputation = int(event.args["newReputation"])

    def _on_RoundFinalized(self, event: ChainEvent) -> None:  # noqa: N802
        self._round(int(event.args["roundId"])).finalized_block = event.block_number

    # ------------------------------------------------------------------ questions

    def eligible(self) -> list[str]:
        """Organizations the contract would accept in a pair now: active with at least `minStake`.

        In registration order (the event order), which is also a stable tie-break for callers.
        """
        min_stake = self.parameters.get("minStake", 0)
        return [
            address
            for address, org in self.organizations.items()
            if org.status is OrgStatus.ACTIVE and org.stake >= min_stake
        ]

    def open_round(self) -> RoundRecord | None:
        for round_record in self.rounds.values():
            if not round_record.finalized:
                return round_record
        return None

    def finalized_rounds(self) -> list[RoundRecord]:
        return [self.rounds[key] for key in sorted(self.rounds) if self.rounds[key].finalized]


class LedgerFollower:
    """Follows a market's event log incrementally (each event is read once) and folds it."""

    def __init__(self, market: MarketClient, from_block: int) -> None:
        self.market = market
        self._reader = EventReader(market.w3, market.contract)
        self._events: list[ChainEvent] = []
        self._read_through = from_block - 1

    @property
    def events(self) -> list[ChainEvent]:
        return self._events

    def sync(self) -> tuple[Ledger, int]:
        """Read events up to the current block; returns the ledger folded up to it and that block."""
        head = self.market.block_number()
        if head > self._read_through:
            self._events += self._reader.read(self._read_through + 1, head)
            self._read_through = head
        return Ledger.from_events(self._events, until_block=head), head
