"""A federation of organizations trading on a real local chain, end to end, in one process.

Everything but the learning is real: an Anvil chain with the market deployed, a content store
(a local directory by default, the same CIDs as IPFS), and for each organization the real
runtime (`org.runtime.OrgRuntime`: profile documents with DP-released category histograms,
teachers sealing knowledge bundles to their students' registered keys, students opening them with
CID, signer and content checked, reports), the LinUCB matchmaker committing decision records,
opening and finalizing rounds (fees, credits, reputation, slashes), and at the end an independent
replay of every round from chain + store.

The learners are synthetic (`sim.learner.SyntheticLearner`): hidden skills and a non-linear
ground-truth gain, so the demo can report how close the matchmaker's pairings came to the best
possible ones (the oracle). Now and then an organization is offline for a round (seeded), so the
demo shows slashing as well as rewards.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from coincurve import PrivateKey

from chain.devchain import FIRST_ORGANIZATION_INDEX, DevChain
from chain.units import ether, from_wad
from exchange.cid import cid_binary, cid_text
from exchange.local import LocalStore
from exchange.store import ContentStore
from market.bundles import TokenizerId
from market.documents import DecisionRecord
from matchmaker.audit import RoundVerdict, verify_rounds
from matchmaker.matching import match
from matchmaker.policies import PolicyParams
from matchmaker.service import Matchmaker
from org.runtime import OrgRuntime
from sim.learner import SyntheticLearner
from sim.synthetic import Federation, SimConfig

MAX_ORGANIZATIONS = 10 - FIRST_ORGANIZATION_INDEX  # Anvil's funded dev accounts left for organizations
DEMO_TOKENIZER = TokenizerId(
    name="knexa-demo-bpe", vocab_size=512, digest=hashlib.sha256(b"demo").hexdigest()
)


@dataclass(frozen=True)
class PairOutcome:
    teacher: str
    student: str
    score: float
    bundle_cid: str
    reported_gain: float | None
    true_gain: float


@dataclass(frozen=True)
class RoundOutcome:
    round_id: int
    pairs: list[PairOutcome]
    chosen_value: float
    oracle_value: float


@dataclass
class DemoReport:
    market: str
    organizations: list[dict[str, Any]] = field(default_factory=list)
    rounds: list[RoundOutcome] = field(default_factory=list)
    verdicts: list[RoundVerdict] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "market": self.market,
            "organizations": self.organizations,
            "rounds": [
                {
                    "round": outcome.round_id,
                    "chosen_true_gain": outcome.chosen_value,
                    "oracle_true_gain": outcome.oracle_value,
                    "pairs": [pair.__dict__ for pair in outcome.pairs],
                }
                for outcome in self.rounds
            ],
            "verdicts": [verdict.to_json() for verdict in self.verdicts],
            "share_of_oracle_gain": self.share_of_oracle(),
        }

    def share_of_oracle(self) -> float:
        oracle = math.fsum(outcome.oracle_value for outcome in self.rounds)
        chosen = math.fsum(outcome.chosen_value for outcome in self.rounds)
        return chosen / oracle if oracle > 0 else 0.0


OFFLINE_PROBABILITY = 0.1  # per organization and round: it skips the round (a no-show)


@dataclass
class DemoOrganization:
    """One organization: its registered name (its simulated id) and its running agent."""

    sim_id: str
    runtime: OrgRuntime

    @property
    def address(self) -> str:
        return self.runtime.address


def run_market_demo(
    organizations: int = 6,
    rounds: int = 6,
    seed: int = 0,
    store_dir: Path | None = None,
    on_round: Callable[[RoundOutcome], None] | None = None,
) -> DemoReport:
    """Play `rounds` marketplace rounds among `organizations` organizations with synthetic learners."""
    if not 2 <= organizations <= MAX_ORGANIZATIONS:
        raise ValueError(f"organizations must be in [2, {MAX_ORGANIZATIONS}] (Anvil's funded dev accounts)")
    params = PolicyParams()
    federation = Federation(
        SimConfig(n_orgs=organizations, rounds=rounds, seed=seed, categories=params.categories)
    )
    with tempfile.TemporaryDirectory(prefix="knexa-demo-") as scratch, DevChain() as chain:
        store = LocalStore(store_dir or Path(scratch) / "store")
        members: dict[str, DemoOrganization] = {}
        for index, sim_id in enumerate(federation.active_ids()):
            key = PrivateKey(hashlib.sha256(f"knexa-demo/{seed}/{sim_id}".encode()).digest())
            client = chain.organization(index)
            learner = SyntheticLearner(sim_id, seed)
            client.register(
                sim_id,
                cid_binary(store.put(learner.profile().to_bytes())),
                key.public_key.format(compressed=True),
                ether(2),
            )
            runtime = OrgRuntime(
                client, store, key, learner, Path(scratch) / "orgs" / sim_id, chain.deployment.deploy_block
            )
            members[runtime.address] = DemoOrganization(sim_id, runtime)

        matchmaker = Matchmaker(
            chain.matchmaker(),
            store,
            params,
            seed=seed,
            from_block=chain.deployment.deploy_block,
            round_blocks=40,
        )
        report = DemoReport(market=chain.deployment.market_address)
        for _ in range(rounds):
            outcome = _play_round(chain, store, matchmaker, members, federation, seed)
            report.rounds.append(outcome)
            if on_round is not None:
                on_round(outcome)
        report.verdicts = verify_rounds(chain.client(), store, chain.deployment.deploy_block)
        reader = chain.client()
        for address, member in members.items():
            state = reader.organization(address)
            report.organizations.append(
                {
                    "name": member.sim_id,
                    "address": address,
                    "stake_eth": from_wad(state.stake),
                    "reputation": from_wad(state.reputation),
                    "credits": from_wad(state.credits),
                    "earned_eth": from_wad(reader.pending_withdrawal(address)),
                }
            )
        return report


def _play_round(
    chain: DevChain,
    store: ContentStore,
    matchmaker: Matchmaker,
    members: dict[str, DemoOrganization],
    federation: Federation,
    seed: int,
) -> RoundOutcome:
    opened = matchmaker.step()
    if opened.action != "opened" or opened.round_id is None:
        raise RuntimeError(f"the matchmaker did not open a round: {opened.detail}")
    round_id = opened.round_id
    rng = np.random.default_rng([seed, round_id, 0x0FF])
    online = [member for member in members.values() if rng.random() >= OFFLINE_PROBABILITY]
    # Two passes: teachers publish in the first, and every student that got its bundle learns and
    # reports by the second (whatever the order the organizations stepped in).
    for _ in range(2):
        for member in online:
            member.runtime.step()

    ledger, _ = matchmaker.sync()
    record = ledger.rounds[round_id]
    sim_ids = tuple(sorted(member.sim_id for member in members.values()))
    truth = federation.true_gain_matrix(sim_ids)
    position = {sim_id: index for index, sim_id in enumerate(sim_ids)}
    decision_scores = _decision_scores(record.decision_cid, store)
    outcomes: list[PairOutcome] = []
    for pair in record.pairs:
        teacher_id, student_id = members[pair.teacher].sim_id, members[pair.student].sim_id
        outcomes.append(
            PairOutcome(
                teacher=teacher_id,
                student=student_id,
                score=decision_scores.get((pair.teacher, pair.student), float("nan")),
                bundle_cid=cid_text(pair.bundle_cid) if pair.bundle_cid is not None else "",
                reported_gain=from_wad(pair.gain) if pair.gain is not None else None,
                true_gain=float(truth[position[teacher_id], position[student_id]]),
            )
        )
    chain.mine_until(record.deadline_block + 1)
    finalized = matchmaker.step()
    if finalized.action != "finalized":
        raise RuntimeError(f"the matchmaker did not finalize round {round_id}: {finalized.detail}")

    oracle_matrix = truth.copy()
    np.fill_diagonal(oracle_matrix, -np.inf)
    oracle = match(oracle_matrix, capacity=1).total
    chosen = math.fsum(outcome.true_gain for outcome in outcomes)
    return RoundOutcome(round_id, outcomes, chosen, oracle)


def _decision_scores(decision_cid: bytes, store: ContentStore) -> dict[tuple[str, str], float]:
    """UCB scores of the chosen pairs, read back from the round's decision record."""
    record = DecisionRecord.from_bytes(store.get(cid_text(decision_cid)))
    return {(candidate.teacher, candidate.student): candidate.score for candidate in record.candidates}
