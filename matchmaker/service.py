"""The live matchmaker: read the public record, decide, commit, open rounds, finalize them.

Its policy state is rebuilt from chain + store by the same `Replayer` an auditor runs, on every
step: a restarted matchmaker continues exactly where it left off, and a matchmaker whose own
history does not replay (its code or declared policy changed) refuses to go on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from chain.client import MarketClient
from exchange.cid import cid_binary
from exchange.store import ContentStore
from market.documents import DecisionRecord
from market.ledger import Ledger, LedgerFollower
from market.parameters import read_constants
from matchmaker.audit import MATCH, MISMATCH, Replayer, RoundVerdict
from matchmaker.inputs import ProfileFetcher
from matchmaker.policies import Decision, PolicyParams
from matchmaker.runner import PolicyRunner, gather_inputs

DEFAULT_ROUND_BLOCKS = 20


class MatchmakerHalted(RuntimeError):  # noqa: N818
    """The matchmaker's own history does not replay: it must not decide further rounds."""


@dataclass(frozen=True)
class StepResult:
    """What one step did: `opened`, `finalized`, `waiting` (deadline ahead) or `idle` (too few orgs)."""

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
            raise ValueError("the matchmaker needs an account holding MATCHMAKER_ROLE")
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

    def step(self) -> StepResult:
        """Do the one thing the market needs now."""
        ledger, head = self.sync()
        open_round = ledger.open_round()
        if open_round is not None:
            if head > open_round.deadline_block:
                self.market.finalize_round(open_round.round_id)
                return StepResult("finalized", open_round.round_id, f"finalized at block {head + 1}")
            blocks_left = open_round.deadline_block - head
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
