"""Replay the matchmaker from the public record and judge every round.

For each round on chain, in order: fetch its decision record by the CID the chain holds (the store
checks the bytes against it), rebuild the inputs the matchmaker declared (the ledger folded from
events up to the record's `inputs_block`, and the profile documents those events point at),
recompute the decision with the committed policy, and compare field by field with the record and
with the pairs assigned on chain. The first differing field names the verdict. The bandit then
learns from the round's on-chain outcome, exactly as the live matchmaker does (`PolicyRunner`).

Verdicts: `match`; `mismatch` (the matchmaker did not follow its declared policy, or lied in its
record); `unverifiable` (a document is missing from the store or malformed, so the history cannot
be recomputed from that round on).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chain.client import MarketClient
from chain.events import ChainEvent, EventReader
from exchange.cid import cid_text
from exchange.errors import ExchangeError, StoreError
from exchange.store import ContentStore
from market.documents import DecisionRecord
from market.ledger import Ledger, LedgerRound
from market.parameters import read_constants
from matchmaker.inputs import HistoryUnavailable, ProfileFetcher, recorded_unavailable
from matchmaker.policies import Decision, PolicyParams, policy_commitment
from matchmaker.runner import PolicyRunner, RoundInputs, gather_inputs

MATCH = "match"
MISMATCH = "mismatch"
UNVERIFIABLE = "unverifiable"
MAX_DECISION_BYTES = 256 << 20

# The order in which fields are compared: the first difference is the most telling one.
_FIELD_ORDER = (
    "format",
    "version",
    "round",
    "policy",
    "policy_digest",
    "inputs",
    "orgs",
    "state_digest",
    "candidates",
    "chosen",
)


@dataclass(frozen=True)
class RoundVerdict:
    """The replay's judgement of one round."""

    round_id: int
    verdict: str
    first_difference: str | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "round": self.round_id,
            "verdict": self.verdict,
            "first_difference": self.first_difference,
            "detail": self.detail,
        }


def first_difference(recorded: Any, recomputed: Any, path: str = "") -> str | None:
    """The path of the first difference between two JSON values (exact float comparison)."""
    if isinstance(recorded, dict) and isinstance(recomputed, dict):
        keys = [key for key in _FIELD_ORDER if key in recorded or key in recomputed] if not path else []
        keys += sorted((set(recorded) | set(recomputed)) - set(keys))
        for key in keys:
            where = f"{path}.{key}" if path else key
            if key not in recorded or key not in recomputed:
                return where
            found = first_difference(recorded[key], recomputed[key], where)
            if found is not None:
                return found
        return None
    if isinstance(recorded, list) and isinstance(recomputed, list):
        for index, (left, right) in enumerate(zip(recorded, recomputed, strict=False)):
            found = first_difference(left, right, f"{path}[{index}]")
            if found is not None:
                return found
        return None if len(recorded) == len(recomputed) else f"{path}.length"
    if type(recorded) is not type(recomputed) or recorded != recomputed:
        return path or "$"
    return None


@dataclass
class Replayer:
    """Walks the rounds on chain in order, keeping the policy state a faithful matchmaker has.

    Incremental: `advance` with a longer event log (the same log, grown) continues where it
    stopped, and every event is folded once into each of two ledgers: the head (all events seen)
    and the one at the current round's inputs block, which moves forward round by round. So a
    replay of R rounds is linear in the log, not quadratic. A record that names an inputs block
    earlier than the previous round's (only a doctored one can) refolds from genesis for that round.
    The live matchmaker uses it to rebuild its own state after a restart.
    """

    store: ContentStore
    initial_reputation: int
    runner: PolicyRunner | None = None
    verdicts: dict[int, RoundVerdict] = field(default_factory=dict)
    broken_at: int | None = None
    _observed_through: int = 0
    retry_store_errors: bool = False  # live matchmaker: a store outage is retried, not "unverifiable"
    _profiles: ProfileFetcher | None = None
    _head: Ledger | None = None
    _head_count: int = 0
    _at: Ledger | None = None
    _at_count: int = 0
    _at_block: int = -1

    def _fold_head(self, events: Sequence[ChainEvent]) -> Ledger:
        if self._head is None or len(events) < self._head_count:
            self._head, self._head_count = Ledger(initial_reputation=self.initial_reputation), 0
        for event in events[self._head_count :]:
            self._head.apply(event)
        self._head_count = len(events)
        return self._head

    def ledger_at(self, events: Sequence[ChainEvent], block: int) -> Ledger:
        """The ledger folded up to and including `block` (equal to `Ledger.from_events(..., block)`)."""
        if self._at is None or block < self._at_block or len(events) < self._at_count:
            self._at, self._at_count = Ledger(initial_reputation=self.initial_reputation), 0
        ledger = self._at
        while self._at_count < len(events) and events[self._at_count].block_number <= block:
            ledger.apply(events[self._at_count])
            self._at_count += 1
        ledger.last_block = max(ledger.last_block, block)
        self._at_block = block
        return ledger

    def advance(self, events: Sequence[ChainEvent]) -> list[RoundVerdict]:
        """Judge every round in `events` not yet settled; returns all verdicts so far in round order."""
        if self._profiles is None:
            self._profiles = ProfileFetcher(self.store)
        ledger = self._fold_head(events)
        for round_id in sorted(ledger.rounds):
            if round_id <= self._observed_through:
                continue
            outcome = ledger.rounds[round_id]
            if self.broken_at is not None:
                self.verdicts[round_id] = RoundVerdict(
                    round_id,
                    UNVERIFIABLE,
                    None,
                    f"history cannot be recomputed from round {self.broken_at} on",
                )
                continue
            try:
                verdict, decision = self._judge(round_id, outcome, events)
            except HistoryUnavailable as error:
                if self.retry_store_errors and isinstance(error.__cause__, StoreError):
                    raise error.__cause__ from error  # nothing is settled: the next advance retries
                self.broken_at = round_id
                self.verdicts[round_id] = RoundVerdict(round_id, UNVERIFIABLE, None, str(error))
                continue
            self.verdicts[round_id] = verdict
            if not outcome.finalized:
                break  # an open round: judged, but nothing to learn yet
            if self.runner is not None and decision is not None:
                self.runner.observe(decision, outcome)
            self._observed_through = round_id
        return [self.verdicts[key] for key in sorted(self.verdicts)]

    def _load_record(self, outcome: LedgerRound) -> DecisionRecord:
        try:
            cid = cid_text(outcome.decision_cid)
            return DecisionRecord.from_bytes(self.store.get(cid, max_bytes=MAX_DECISION_BYTES))
        except (ExchangeError, ValueError) as error:
            raise HistoryUnavailable(f"decision record of round {outcome.round_id}: {error}") from error

    def _runner_for(self, record: DecisionRecord) -> PolicyRunner:
        try:
            declared = record.policy.params["params"]
            if not isinstance(declared, dict):
                raise TypeError("policy.params.params must be an object")
            params = PolicyParams.from_dict(declared)
            seed = record.policy.params["seed"]
            if not isinstance(seed, int) or isinstance(seed, bool):
                raise ValueError("seed must be an integer")
            return PolicyRunner(params, seed)
        except (KeyError, ValueError, TypeError) as error:
            raise HistoryUnavailable(f"round {record.round} declares an unusable policy: {error}") from error

    def _judge(
        self, round_id: int, outcome: LedgerRound, events: Sequence[ChainEvent]
    ) -> tuple[RoundVerdict, Decision | None]:
        """Recompute the round first (so that the state can follow it whatever the verdict), then
        check, in order: the digest on chain, the declared policy, the inputs block, every field of
        the record, and the pairs assigned on chain."""
        record = self._load_record(outcome)
        if self.runner is None:
            self.runner = self._runner_for(record)
        runner = self.runner
        ledger = self.ledger_at(events, record.inputs_block)
        assert self._profiles is not None
        profiles = self._profiles.fetch(ledger, replay_unavailable=recorded_unavailable(record.excluded))
        inputs: RoundInputs = gather_inputs(round_id, ledger, profiles, runner.params)
        if len(inputs.organizations) < 2:
            raise HistoryUnavailable(
                f"round {round_id}: fewer than two usable organizations at its inputs block"
            )
        decision, recomputed = runner.decide(inputs)
        on_chain_digest = outcome.policy_digest.hex()
        checks = (
            (
                record.policy_digest == on_chain_digest,
                "policy_digest",
                "the record's policy digest is not on chain",
            ),
            (
                policy_commitment(runner.params, runner.seed) == on_chain_digest,
                "policy",
                "the round's policy differs from the policy declared in round 1",
            ),
            (
                record.inputs_block < outcome.opened_block,
                "inputs_block",
                "the declared inputs are not older than the round",
            ),
        )
        for passed, where, detail in checks:
            if not passed:
                return RoundVerdict(round_id, MISMATCH, where, detail), decision
        difference = first_difference(record.to_json(), recomputed.to_json())
        if difference is not None:
            detail = "the record differs from the decision recomputed from public inputs"
            return RoundVerdict(round_id, MISMATCH, difference, detail), decision
        if [(pair.teacher, pair.student) for pair in outcome.pairs] != list(decision.pairs):
            detail = "the pairs assigned on chain are not the decision's"
            return RoundVerdict(round_id, MISMATCH, "pairs_on_chain", detail), decision
        detail = f"{len(decision.pairs)} pairs over {len(decision.org_ids)} organizations recomputed exactly"
        return RoundVerdict(round_id, MATCH, None, detail), decision


def read_history(market: MarketClient, from_block: int) -> list[ChainEvent]:
    """Every market event from `from_block` on, in chain order."""
    return EventReader(market.w3, market.contract).read(from_block)


def verify_rounds(market: MarketClient, store: ContentStore, from_block: int) -> list[RoundVerdict]:
    """Recompute every round from chain + store and judge it (see the module docstring)."""
    replayer = Replayer(store, read_constants(market).initial_reputation)
    return replayer.advance(read_history(market, from_block))


def summarize(verdicts: Iterable[RoundVerdict]) -> dict[str, int]:
    counts = {MATCH: 0, MISMATCH: 0, UNVERIFIABLE: 0}
    for verdict in verdicts:
        counts[verdict.verdict] = counts.get(verdict.verdict, 0) + 1
    return counts
