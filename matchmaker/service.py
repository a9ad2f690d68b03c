"""The live matchmaker: read the public record, decide, commit, open rounds, rule on disputes,
finalize rounds.

It also holds ARBITER_ROLE: every open dispute is judged by `market.disputes.judge` from the
evidence, the bundle and the chain facts alone, the verdict document goes into the store and
`resolveDispute` names it, between the publish deadline and the verdict deadline. A dispute whose
documents the store cannot deliver yet is retried at the next step; one still unjudged at the
verdict deadline settles as Unresolved (fee and bond back to the student, nobody slashed).

Its policy state is rebuilt from chain + store by the same `Replayer` an auditor runs, on every
step: a restarted matchmaker continues exactly where it left off, and a matchmaker whose own
history does not replay (its code or declared policy changed) refuses to go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from chain.client import MarketClient
from chain.errors import ContractReverted
from exchange.cid import cid_binary, cid_text
from exchange.errors import StoreError
from exchange.store import ContentStore
from market.disputes import fetch_and_judge, pair_facts
from market.documents import DecisionRecord
from market.ledger import Ledger, LedgerFollower, LedgerRound
from market.parameters import read_constants
from matchmaker.audit import MATCH, MISMATCH, Replayer, RoundVerdict
from matchmaker.errors import ConfigurationError
from matchmaker.inputs import ProfileFetcher
from matchmaker.policies import Decision, PolicyParams
from matchmaker.runner import PolicyRunner, gather_inputs

DEFAULT_ROUND_BLOCKS = 20
log = logging.getLogger("knexa.matchmaker")


class MatchmakerHalted(RuntimeError):  # noqa: N818
    """The matchmaker's own history does not replay: it must not decide further rounds."""


@dataclass(frozen=True)
class StepResult:
    """What one step did: `opened`, `ruled` (disputes), `finalized`, `waiting` (deadline ahead) or
    `idle` (too few orgs)."""

    action: str
    round_id: int | None
    detail: str


@dataclass
class RoundPlan:
    """A decision about to be committed; tests may alter `pairs` to play a deviating matchmaker."""

    round_id: int
    decision: Decision
    record: DecisionRecord
    pairs: list[tuple[str, str]] = field(default_factory=list)


class Matchmaker:
    """One matchmaker account driving rounds on a deployed market."""

    def __init__(
        self,
        market: MarketClient,
        store: ContentStore,
        params: PolicyParams,
        seed: int = 0,
        from_block: int = 0,
        round_blocks: int = DEFAULT_ROUND_BLOCKS,
        plan_hook: Callable[[RoundPlan], None] | None = None,
        accept_mismatches: bool = False,
    ) -> None:
        """`accept_mismatches`: continue on a market whose history has rounds that do not replay
        (an operator's explicit decision, e.g. after replacing a deviating matchmaker); the state
        then follows what happened on chain. Unverifiable history always halts."""
        if market.account is None:
            raise ConfigurationError("the matchmaker needs an account holding MATCHMAKER_ROLE")
        self.market = market
        self.store = store
        self.params = params
        self.seed = seed
        self.from_block = from_block
        self.round_blocks = round_blocks
        self.plan_hook = plan_hook
        self.accept_mismatches = accept_mismatches
        self._follower = LedgerFollower(market, from_block)
        self._start_clean()

    def _start_clean(self) -> None:
        """Policy state and caches rebuilt from nothing (at start, and after a chain reset)."""
        self.replayer = Replayer(
            self.store,
            read_constants(self.market).initial_reputation,
            runner=PolicyRunner(self.params, self.seed),
            retry_store_errors=True,
        )
        self._profiles = ProfileFetcher(self.store)
        self._resets_seen = self._follower.resets

    # ------------------------------------------------------------------ reading

    def sync(self) -> tuple[Ledger, int]:
        """Read new events up to the current block; returns the ledger and that block number.

        After a chain reset (the follower started clean), the replayed state starts clean too."""
        synced = self._follower.sync()
        if self._follower.resets != self._resets_seen:
            self._start_clean()
        return synced

    def judge_history(self) -> list[RoundVerdict]:
        """Replay the history read so far (incrementally) and return every round's verdict."""
        return self.replayer.advance(self._follower.events)

    def verdicts(self) -> list[RoundVerdict]:
        """Replay the own history (incrementally); halt if any round of it does not match."""
        verdicts = self.judge_history()
        for verdict in verdicts:
            if verdict.verdict == MISMATCH and self.accept_mismatches:
                continue
            if verdict.verdict != MATCH:
                raise MatchmakerHalted(
                    f"round {verdict.round_id} of this market does not replay under the declared policy "
                    f"({verdict.verdict} at {verdict.first_difference}: {verdict.detail})"
                )
        return verdicts

    # ------------------------------------------------------------------ acting

    def _arbitrate(self, ledger: Ledger, open_round: LedgerRound, head: int) -> list[str]:
        """Rule on every open dispute that can be ruled now (the next block is after the publish
        deadline and not after the verdict deadline); returns what was ruled."""
        if not open_round.publish_deadline < head < open_round.verdict_deadline:  # (estimated at head)
            return []
        ruled = []
        for pair in open_round.pairs:
            if pair.evidence_cid is None or pair.outcome is not None:
                continue
            try:
                verdict = fetch_and_judge(self.store, pair_facts(ledger, open_round, pair), pair.evidence_cid)
                verdict_cid = self.store.put(verdict.to_bytes())
            except StoreError as error:  # not a fact about the dispute: try again at the next step
                log.warning(
                    "round %d pair %d: dispute documents unavailable: %s",
                    open_round.round_id,
                    pair.index,
                    error,
                )
                continue
            try:
                self.market.resolve_dispute(
                    open_round.round_id,
                    pair.teacher,
                    pair.student,
                    verdict.defective,
                    cid_binary(verdict_cid),
                )
            except ContractReverted as error:
                if error.name not in ("WrongPairState", "DeadlinePassed", "RoundNotOpen"):
                    raise
                continue
            outcome = "defective" if verdict.defective else "unfounded"
            ruled.append(f"pair {pair.index}: {outcome} ({verdict.reason}), verdict {verdict_cid}")
            log.info(
                "round %d pair %d: %s, evidence %s",
                open_round.round_id,
                pair.index,
                outcome,
                cid_text(pair.evidence_cid),
            )
        return ruled

    def step(self) -> StepResult:
        """Do the one thing the market needs now."""
        ledger, head = self.sync()
        open_round = ledger.open_round()
        if open_round is not None:
            ruled = self._arbitrate(ledger, open_round, head)
            if ruled:
                return StepResult("ruled", open_round.round_id, "; ".join(ruled))
            disputed = any(p.evidence_cid is not None and p.outcome is None for p in open_round.pairs)
            closes_after = open_round.verdict_deadline if disputed else open_round.deadline_block
            if head > closes_after:
                self.market.finalize_round(open_round.round_id)
                return StepResult("finalized", open_round.round_id, f"finalized at block {head + 1}")
            blocks_left = closes_after - head
            return StepResult("waiting", open_round.round_id, f"{blocks_left} blocks to the deadline")
        self.verdicts()
        round_id = max(ledger.rounds, default=0) + 1
        profiles = self._profiles.fetch(ledger)  # never raises: who cannot be read is left out
        inputs = gather_inputs(round_id, ledger, profiles, self.params)
        if len(inputs.organizations) < 2:
            return StepResult("idle", None, f"{len(inputs.organizations)} eligible organization(s); need 2")
        runner = self.replayer.runner
        assert runner is not None
        decision, record = runner.decide(inputs)
        plan = RoundPlan(round_id, decision, record, list(decision.pairs))
        if self.plan_hook is not None:
            self.plan_hook(plan)
        cid = self.store.put(plan.record.to_bytes())
        self.market.open_round(
            round_id,
            cid_binary(cid),
            bytes.fromhex(runner.commitment),
            plan.pairs,
            self.market.block_number() + self.round_blocks,
        )
        return StepResult("opened", round_id, f"{len(plan.pairs)} pairs, decision record {cid}")
