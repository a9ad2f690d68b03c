"""Replay the matchmaker from the public record and judge every round.

For each round on chain, in order: fetch its decision record by the CID the chain holds (the store
checks the bytes against it), rebuild the inputs the matchmaker declared (the ledger folded from
events up to the record's `inputs_block`, and the profile documents those events point at),
recompute the decision with the committed policy, and compare field by field with the record and
with the pairs assigned on chain; recompute the Merkle root of the record's leaves and compare it
with the root the round committed on chain (`RoundOpened.pairsRoot`). The first differing field
names the verdict. The bandit then learns from the round's on-chain outcome, exactly as the live
matchmaker does (`PolicyRunner`).

Every ruled dispute of a round is judged again from its evidence, its bundle and the chain facts
(`market.disputes.judge`): the recomputed verdict must agree with the on-chain outcome (Defective or
Unfounded) and, byte for byte, with the verdict document the arbiter named. A disagreement makes
the round a mismatch at `disputes[<pair index>]...`; a document the store cannot deliver makes it
unverifiable (the pairing history stays recomputable: disputes do not feed the bandit).

Verdicts: `match`; `mismatch` (the matchmaker did not follow its declared policy, or lied in its
record); `unverifiable` (a document is missing from the store or malformed, so the history cannot
be recomputed from that round on).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from chain.client import MarketClient, Outcome
from chain.events import ChainEvent, EventReader
from exchange.cid import cid_text
from exchange.errors import ExchangeError, StoreError
from exchange.store import ContentStore
from market.disputes import MAX_VERDICT_BYTES, DisputeVerdict, fetch_and_judge, pair_facts
from market.documents import DecisionRecord
from market.ledger import Ledger, LedgerPair, LedgerRound
from market.parameters import read_constants
from matchmaker.inputs import HistoryUnavailable, ProfileFetcher, recorded_unavailable
from matchmaker.policies import Decision, PolicyParams, policy_commitment
from matchmaker.runner import PolicyRunner, RoundInputs, gather_inputs

MATCH = "match"
MISMATCH = "mismatch"
UNVERIFIABLE = "unverifiable"
PENDING = "pending"
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
    "merkle",
)


@dataclass(frozen=True)
class DisputeAudit:
    """The replay's judgement of one dispute: the on-chain outcome against the recomputed verdict."""

    pair_index: int
    teacher: str
    student: str
    evidence_cid: str
    outcome: str  # defective | unfounded | unresolved | open
    verdict_cid: str | None
    recomputed_defective: bool | None  # None: not recomputed (open, unresolved, or unverifiable)
    verdict: str  # match | mismatch | unverifiable | pending
    first_difference: str | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "pair_index": self.pair_index,
            "teacher": self.teacher,
            "student": self.student,
            "evidence_cid": self.evidence_cid,
            "outcome": self.outcome,
            "verdict_cid": self.verdict_cid,
            "recomputed_defective": self.recomputed_defective,
            "verdict": self.verdict,
            "first_difference": self.first_difference,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class RoundVerdict:
    """The replay's judgement of one round."""

    round_id: int
    verdict: str
    first_difference: str | None
    detail: str
    disputes: tuple[DisputeAudit, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "round": self.round_id,
            "verdict": self.verdict,
            "first_difference": self.first_difference,
            "detail": self.detail,
            "disputes": [dispute.to_json() for dispute in self.disputes],
        }


_OUTCOME_NAMES = {
    Outcome.DEFECTIVE: "defective",
    Outcome.UNFOUNDED: "unfounded",
    Outcome.UNRESOLVED: "unresolved",
}


def audit_dispute(
    store: ContentStore,
    ledger: Ledger,
    round_record: LedgerRound,
    pair: LedgerPair,
    *,
    raise_store_errors: bool,
) -> DisputeAudit:
    """Judge one dispute again from the public record (see the module docstring)."""
    assert pair.evidence_cid is not None
    evidence_cid = cid_text(pair.evidence_cid)
    outcome = "open" if pair.outcome is None else _OUTCOME_NAMES.get(pair.outcome, pair.outcome.name.lower())
    verdict_cid = None if pair.verdict_cid is None else cid_text(pair.verdict_cid)
    where = f"disputes[{pair.index}]"

    def audit(verdict: str, recomputed: bool | None, difference: str | None, detail: str) -> DisputeAudit:
        return DisputeAudit(
            pair.index,
            pair.teacher,
            pair.student,
            evidence_cid,
            outcome,
            verdict_cid,
            recomputed,
            verdict,
            difference,
            detail,
        )

    if pair.outcome is None:
        return audit(PENDING, None, None, "no verdict yet")
    if pair.outcome is Outcome.UNRESOLVED:
        return audit(
            MATCH,
            None,
            None,
            "no verdict by the verdict deadline: fee and bond went back, nobody was slashed",
        )
    try:
        recomputed = fetch_and_judge(store, pair_facts(ledger, round_record, pair), evidence_cid)
        recorded = store.get(verdict_cid, max_bytes=MAX_VERDICT_BYTES) if verdict_cid else None
    except StoreError as error:
        if raise_store_errors:
            raise
        return audit(UNVERIFIABLE, None, where, f"a dispute document is not in the store: {error}")
    except ExchangeError as error:
        return audit(UNVERIFIABLE, None, where, f"a dispute document is unusable: {error}")
    on_chain = pair.outcome is Outcome.DEFECTIVE
    if recomputed.defective != on_chain:
        detail = (
            f"ruled {outcome} on chain, but the evidence shows "
            f"{'a defective bundle' if recomputed.defective else 'no proven defect'}: {recomputed.reason}"
        )
        return audit(MISMATCH, recomputed.defective, f"{where}.defective", detail)
    if recorded is None:
        return audit(
            MISMATCH, recomputed.defective, f"{where}.verdict_cid", "the ruling names no verdict document"
        )
    if recorded != recomputed.to_bytes():
        try:
            difference = first_difference(DisputeVerdict.from_bytes(recorded).to_json(), recomputed.to_json())
        except (ExchangeError, ValueError):
            difference = None
        detail = "the verdict document differs from the verdict recomputed from the evidence"
        return audit(MISMATCH, recomputed.defective, f"{where}.verdict.{difference or '$'}", detail)
    return audit(MATCH, recomputed.defective, None, f"recomputed: {recomputed.reason}")


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
            verdict = self._with_disputes(verdict, ledger, outcome)
            self.verdicts[round_id] = verdict
            if not outcome.finalized:
                break  # an open round: judged, but nothing to learn yet
            if self.runner is not None and decision is not None:
                self.runner.observe(decision, outcome)
            self._observed_through = round_id
        return [self.verdicts[key] for key in sorted(self.verdicts)]

    def _with_disputes(self, verdict: RoundVerdict, ledger: Ledger, outcome: LedgerRound) -> RoundVerdict:
        """The round's verdict with its disputes judged again; a dispute that does not replay makes
        a matching round a mismatch (or unverifiable) at that dispute."""
        audits = tuple(
            audit_dispute(self.store, ledger, outcome, pair, raise_store_errors=self.retry_store_errors)
            for pair in outcome.pairs
            if pair.evidence_cid is not None
        )
        if not audits:
            return verdict
        worst = next((a for a in audits if a.verdict == MISMATCH), None) or next(
            (a for a in audits if a.verdict == UNVERIFIABLE), None
        )
        if verdict.verdict != MATCH or worst is None:
            return replace(verdict, disputes=audits)
        return RoundVerdict(verdict.round_id, worst.verdict, worst.first_difference, worst.detail, audits)

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
        leaves_root = record.leaves_root()
        if record.pairs_root != leaves_root:
            detail = "the record's Merkle root is not the root of its leaves"
            return RoundVerdict(round_id, MISMATCH, "merkle.root", detail), decision
        if leaves_root != outcome.pairs_root.hex():
            detail = (
                f"the root committed on chain ({outcome.pairs_root.hex()}) is not the root of the "
                f"record's leaves ({leaves_root})"
            )
            return RoundVerdict(round_id, MISMATCH, "pairs_root", detail), decision
        if [(pair.teacher, pair.student) for pair in outcome.pairs] != list(decision.pairs):
            detail = "the pairs assigned on chain are not the decision's"
            return RoundVerdict(round_id, MISMATCH, "pairs_on_chain", detail), decision
        detail = (
            f"{len(decision.pairs)} pairs over {len(decision.org_ids)} organizations recomputed exactly, "
            "Merkle root as committed"
        )
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
