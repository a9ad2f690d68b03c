"""The matchmaker's policies as pairing methods of the federation experiment (no chain involved).

`PolicyPairing` gives the experiment the same decisions the on-chain matchmaker would make: each
organization's sanitised profile (model family, size bucket, LoRA rank, validation Pass@1 and its
change, a DP-released category histogram) goes through `matchmaker.policies`, and after every round
the students' validation gains are the rewards (`observe`). Reputation and credits, which come from
the chain in the market, are kept here the way the contract keeps them: an EMA of the teacher's
outcomes (with the default deployment's weight) and the sum of positive gains it caused.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from agent.agent import Agent
from agent.data.templates import CATEGORIES
from agent.models.zoo import n_params
from chain.units import WAD, from_wad, to_wad
from market.parameters import DEFAULT_PARAMETERS, PairCreditWindow, decayed_credits, reputation_ema
from market.privacy import PrivacyAccountant, release_histogram, size_bucket_of
from matchmaker.features import OrgFeatures
from matchmaker.policies import (
    Decision,
    DirectedPair,
    Policy,
    PolicyName,
    PolicyParams,
    make_policy,
    rng_for_round,
)
from sim.experiment import RoundOutcome


class PolicyPairing:
    """A stateful pairing method: `bind` it to a run's agents, then call it once per round."""

    def __init__(self, policy: PolicyName, epsilon: float = 1.0) -> None:
        self.params = PolicyParams(name=policy, categories=CATEGORIES)
        self.epsilon = epsilon
        self._policy: Policy | None = None
        self._features: dict[str, OrgFeatures] = {}
        self._decision: Decision | None = None
        self._seed = 0
        self.decisions: list[Decision] = []
        self._windows: dict[tuple[str, str], PairCreditWindow] = {}

    def bind(self, agents: Sequence[Agent], seed: int, val: dict[str, float]) -> None:
        """Start a run: fresh policy state, each organization's profile from its own data (DP)."""
        self._policy = make_policy(self.params)
        self._decision = None
        self._seed = seed
        self.decisions = []
        self._features = {}
        self._windows = {}
        for index, agent in enumerate(agents):
            counts = agent.org.category_counts()
            release = release_histogram(
                {category: counts.get(category, 0) for category in CATEGORIES},
                rng=np.random.default_rng([seed, index, 0xD9]),
                accountant=PrivacyAccountant(),
                categories=CATEGORIES,
                epsilon=self.epsilon,
            )
            self._features[agent.name] = OrgFeatures(
                family=agent.spec.family,
                size_bucket=size_bucket_of(n_params(agent.model)),
                lora_rank=agent.spec.lora_rank,
                pass1=val[agent.name],
                pass1_delta=0.0,
                categories=CATEGORIES,
                category_hist=release.histogram,
            )

    def __call__(
        self, round_idx: int, orgs: Sequence[str], rng: random.Random, history: Sequence[RoundOutcome]
    ) -> list[DirectedPair]:
        if self._policy is None:
            raise RuntimeError("bind the pairing to the run's agents first")
        if history and self._decision is not None:
            self._observe(history[-1])
        decision = self._policy.select(
            round_idx, list(orgs), self._features, rng_for_round(self._seed, round_idx)
        )
        self._decision = decision
        self.decisions.append(decision)
        return [(teacher, student) for teacher, student in decision.pairs]

    def _observe(self, record: RoundOutcome) -> None:
        assert self._policy is not None
        assert self._decision is not None
        teacher_of = {student: teacher for teacher, student in record.pairs}
        rewards: dict[tuple[str, str], float | None] = {}
        for teacher, student in self._decision.pairs:
            gain = record.gains.get(student) if teacher_of.get(student) == teacher else None
            rewards[(teacher, student)] = gain
            if gain is None:
                continue
            # Profiles move as they would in the market (v2): the student's Pass@1 and its change;
            # both reputations toward 1 for a delivered and reported pair, whatever the gain; the
            # teacher's credits from a positive gain, halved per repeat of the pair in its window.
            p = DEFAULT_PARAMETERS
            mine = self._features[student]
            pass1 = min(1.0, max(0.0, mine.pass1 + gain))
            self._features[student] = _replace(
                mine,
                pass1=pass1,
                pass1_delta=max(-1.0, min(1.0, gain)),
                reputation=from_wad(reputation_ema(to_wad(mine.reputation), WAD, p.reputation_weight_bps)),
            )
            theirs = self._features[teacher]
            window = self._windows.get((teacher, student), PairCreditWindow())
            credits, self._windows[(teacher, student)] = decayed_credits(
                window, record.round, to_wad(max(-1.0, min(1.0, gain))), p.credit_window_rounds
            )
            self._features[teacher] = _replace(
                theirs,
                reputation=from_wad(reputation_ema(to_wad(theirs.reputation), WAD, p.reputation_weight_bps)),
                credits=theirs.credits + from_wad(credits),
            )
        self._policy.observe(self._decision, rewards)


def _replace(features: OrgFeatures, **changes: float) -> OrgFeatures:
    values = features.to_dict()
    values.update(changes)
    return OrgFeatures.from_dict(values)
