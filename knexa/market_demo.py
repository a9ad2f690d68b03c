"""A federation of scripted organizations trading on a real local chain, end to end.

Everything but the learning is real: an Anvil chain with the market deployed, a content store
(a local directory by default, the same CIDs as IPFS), profile documents with DP-released category
histograms, the LinUCB matchmaker committing decision records and opening rounds, teachers sealing
knowledge bundles to their students' registered keys, students opening them (CID, signer, content
checked) and reporting gains, finalization with fees, credits, reputation and slashes, and at the
end an independent replay of every round from chain + store.

The organizations' hidden skills and the gain a bundle brings come from the synthetic federation
of `sim.synthetic` (a non-linear ground truth plus noise), so the demo can also report how
close the matchmaker's pairings came to the best possible ones (the oracle). Real LoRA agents
replace the scripted gains in the agent runtime.
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

from chain.client import MarketClient
from chain.devchain import FIRST_ORGANIZATION_INDEX, DevChain
from chain.units import ether, from_wad, to_wad
from exchange.cid import cid_binary, cid_text
from exchange.local import LocalStore
from exchange.store import ContentStore
from market.bundles import KnowledgeBundle, TokenizerId
from market.documents import DecisionRecord
from market.sealing import open_knowledge, publish_sealed
from matchmaker.audit import RoundVerdict, verify_rounds
from matchmaker.matching import match
from matchmaker.policies import PolicyParams
from matchmaker.service import Matchmaker
from sim.learner import synthetic_profile
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


@dataclass
class ScriptedOrganization:
    """One organization: its chain account, its encryption key and its hidden simulated traits."""

    sim_id: str
    client: MarketClient
    encryption_key: PrivateKey

    @property
    def address(self) -> str:
        assert self.client.account is not None
        return str(self.client.account.address)


def _teach(
    store: ContentStore, teacher: ScriptedOrganization, student: ScriptedOrganization, round_id: int
) -> str:
    """Seal a (small, text-only) knowledge bundle for `student`; returns its CID."""
    bundle = KnowledgeBundle(
        round=round_id,
        teacher=teacher.address,
        student=student.address,
        tokenizer=DEMO_TOKENIZER,
        prompt_ids=("transfer-0001", "transfer-0002"),
        completions=("    return a + b\n", "    return sorted(xs)\n"),
    )
    assert teacher.client.account is not None
    return publish_sealed(
        store,
        bundle,
        teacher_key=bytes(teacher.client.account.key),
        recipient_public_key=student.encryption_key.public_key.format(compressed=True),
    )


def run_market_demo(
    organizations: int = 6,
    rounds: int = 6,
    seed: int = 0,
    store_dir: Path | None = None,
    on_round: Callable[[RoundOutcome], None] | None = None,
) -> DemoReport:
    """Play `rounds` marketplace rounds among `organizations` scripted organizations."""
    if not 2 <= organizations <= MAX_ORGANIZATIONS:
        raise ValueError(f"organizations must be in [2, {MAX_ORGANIZATIONS}] (Anvil's funded dev accounts)")
    params = PolicyParams()
    # A few reports go missing (p_missing) so that the demo shows slashing as well as rewards.
    config = SimConfig(
        n_orgs=organizations, rounds=rounds, seed=seed, categories=params.categories, p_missing=0.1
    )
    federation = Federation(config)
    with tempfile.TemporaryDirectory(prefix="knexa-demo-") as scratch, DevChain() as chain:
        store = LocalStore(store_dir or Path(scratch) / "store")
        members: dict[str, ScriptedOrganization] = {}
        for index, sim_id in enumerate(federation.active_ids()):
            key = PrivateKey(hashlib.sha256(f"knexa-demo/{seed}/{sim_id}".encode()).digest())
            member = ScriptedOrganization(sim_id, chain.organization(index), key)
            profile_cid = store.put(synthetic_profile(federation, sim_id).to_bytes())
            member.client.register(
                sim_id, cid_binary(profile_cid), key.public_key.format(compressed=True), ether(2)
            )
            members[member.address] = member

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
            outcome = _play_round(chain, store, matchmaker, members, federation)
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
    members: dict[str, ScriptedOrganization],
    federation: Federation,
) -> RoundOutcome:
    opened = matchmaker.step()
    if opened.action != "opened" or opened.round_id is None:
        raise RuntimeError(f"the matchmaker did not open a round: {opened.detail}")
    round_id = opened.round_id
    reader = chain.client()
    pairs = reader.pairs(round_id)
    sim_ids = tuple(sorted(member.sim_id for member in members.values()))
    by_sim = {member.sim_id: member for member in members.values()}

    truth = federation.true_gain_matrix(sim_ids)
    position = {sim_id: index for index, sim_id in enumerate(sim_ids)}
    sim_pairs = tuple((members[pair.teacher].sim_id, members[pair.student].sim_id) for pair in pairs)
    reports = federation.report(round_id, sim_ids, sim_pairs)
    decision_scores = _decision_scores(matchmaker, round_id, store)

    outcomes: list[PairOutcome] = []
    for pair, (teacher_id, student_id) in zip(pairs, sim_pairs, strict=True):
        teacher, student = members[pair.teacher], members[pair.student]
        cid = _teach(store, teacher, student, round_id)
        teacher.client.publish_bundle(round_id, student.address, cid_binary(cid))
        # The student trusts only the chain for who its teacher is, and checks everything it opens.
        bundle = open_knowledge(
            cid, store, student.encryption_key.secret, teacher.address, round_id, student.address
        )
        assert bundle.completions is not None
        reported = reports[(teacher_id, student_id)]
        if reported is not None:
            gain = max(-1.0, min(1.0, reported))
            adapter_cid = store.put(f"adapter commitment {round_id} {student.address}".encode())
            student.client.report_gain(round_id, teacher.address, to_wad(gain), cid_binary(adapter_cid))
        outcomes.append(
            PairOutcome(
                teacher=by_sim[teacher_id].sim_id,
                student=by_sim[student_id].sim_id,
                score=decision_scores.get((pair.teacher, pair.student), float("nan")),
                bundle_cid=cid,
                reported_gain=reported,
                true_gain=float(truth[position[teacher_id], position[student_id]]),
            )
        )
    deadline = reader.round(round_id).deadline_block
    chain.mine_until(deadline + 1)
    finalized = matchmaker.step()
    if finalized.action != "finalized":
        raise RuntimeError(f"the matchmaker did not finalize round {round_id}: {finalized.detail}")

    oracle_matrix = truth.copy()
    np.fill_diagonal(oracle_matrix, -np.inf)
    oracle = match(oracle_matrix, capacity=1).total
    chosen = math.fsum(outcome.true_gain for outcome in outcomes)
    return RoundOutcome(round_id, outcomes, chosen, oracle)


def _decision_scores(
    matchmaker: Matchmaker, round_id: int, store: ContentStore
) -> dict[tuple[str, str], float]:
    """UCB scores of the chosen pairs, read back from the round's decision record."""
    ledger, _ = matchmaker.sync()
    record = DecisionRecord.from_bytes(store.get(cid_text(ledger.rounds[round_id].decision_cid)))
    return {(candidate.teacher, candidate.student): candidate.score for candidate in record.candidates}
