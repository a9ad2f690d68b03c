"""A synthetic federation for the bandit alone (no LLMs), used by tests and benchmarks.

Each organization has hidden traits drawn from its own seeded stream (so an organization is the
same whichever policy runs):

* a data distribution ``pi ~ Dirichlet(alpha)`` over the categories (small ``alpha``: specialists);
* a model size bucket ``b`` in 0..4, a family, a LoRA rank, and a skill level growing with ``b``;
* a per-category skill ``skill[k] = level * (0.25 + 0.75 * sqrt(pi[k] / max(pi)))`` (strong where it
  has data) and evaluation weights ``w = 0.8 / K + 0.2 * pi`` (its validation set is broad: an
  organization wants to be good at every category, and it is weakest where it has little data).

Ground-truth expected gain of the directed pair teacher ``t`` -> student ``s`` (non-linear)::

    headroom = sum_k w_s[k] * max(0, skill_t[k] - skill_s[k])
    harm     = sum_k w_s[k] * max(0, skill_s[k] - skill_t[k])
    gain     = G * (1 - exp(-headroom / kappa)) - nu * harm
               - size_cost * |b_t - b_s| + family_bonus * [same family]

A report is ``gain + N(0, noise_std^2)``, missing with probability ``p_missing``. Between rounds
each organization leaves with probability ``churn`` and ``Poisson(churn * n_orgs)`` new ones join
(at least ``min_orgs`` stay). Noise, missing reports and churn come from per-round streams that do
not depend on the policy (common random numbers), so policies are compared on the same events.

What an organization publishes (`OrgFeatures`): family, size bucket, LoRA rank, a noisy Pass@1
(``sum_k w[k] skill[k]``), and its category counts released with DP (`release_histogram`);
reputation grows with its level. Regret of a round = value of the oracle matching (true expected
gains) - true expected value of the chosen matching.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from market.categories import DEFAULT_CATEGORIES, check_categories
from market.privacy import Mechanism, PrivacyAccountant, release_histogram
from matchmaker.features import OrgFeatures
from matchmaker.matching import match
from matchmaker.policies import DirectedPair, Policy, PolicyParams, make_policy, rng_for_round

FloatArray = NDArray[np.float64]
_ORG_STREAM, _CHURN_STREAM, _REPORT_STREAM = 7, 11, 13


@dataclass(frozen=True)
class GainModel:
    """Constants of the ground-truth gain (in Pass@1 points)."""

    max_gain: float = 0.10
    kappa: float = 0.12
    harm: float = 0.03
    size_cost: float = 0.008
    family_bonus: float = 0.01


@dataclass(frozen=True)
class SimConfig:
    """A synthetic federation. ``n_orgs`` is the initial (and expected) number of organizations."""

    n_orgs: int = 32
    rounds: int = 200
    seed: int = 0
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    dirichlet_alpha: float = 0.3
    noise_std: float = 0.02
    churn: float = 0.0
    p_missing: float = 0.0
    min_orgs: int = 2
    dp_mechanism: Mechanism = "laplace"
    dp_epsilon: float = 1.0
    dp_delta: float = 0.0
    min_records: int = 100
    max_records: int = 1000
    families: tuple[str, ...] = ("qwen", "llama", "phi")
    gain: GainModel = field(default_factory=GainModel)

    def __post_init__(self) -> None:
        check_categories(self.categories)
        if self.n_orgs < 2 or self.rounds < 0 or self.min_orgs < 2:
            raise ValueError("need n_orgs >= 2, min_orgs >= 2 and rounds >= 0")
        for name in ("churn", "p_missing"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{name} must be in [0, 1)")
        if self.noise_std < 0 or self.dirichlet_alpha <= 0 or not 0 < self.min_records <= self.max_records:
            raise ValueError("invalid noise_std, dirichlet_alpha or record counts")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["categories"] = list(self.categories)
        d["families"] = list(self.families)
        return d


@dataclass(frozen=True, eq=False)
class SimOrg:
    """Hidden traits of one synthetic organization, and what it publishes."""

    org_id: str
    pi: FloatArray
    skill: FloatArray
    weights: FloatArray
    size_bucket: int
    family: str
    features: OrgFeatures
    accountant: PrivacyAccountant


class Federation:
    """The synthetic federation's state: the active organizations and their hidden traits."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.orgs: dict[str, SimOrg] = {}
        self._next_index = 0
        for _ in range(config.n_orgs):
            self._join()

    def _join(self) -> None:
        cfg = self.config
        idx = self._next_index
        self._next_index += 1
        rng = np.random.default_rng([cfg.seed, _ORG_STREAM, idx])
        k = len(cfg.categories)
        pi = rng.dirichlet(np.full(k, cfg.dirichlet_alpha))
        size_bucket = int(rng.integers(0, 5))
        level = float(np.clip(rng.uniform(0.2, 0.6) + 0.08 * size_bucket, 0.0, 1.0))
        skill = level * (0.25 + 0.75 * np.sqrt(pi / pi.max()))
        weights = 0.8 / k + 0.2 * pi
        family = cfg.families[int(rng.integers(0, len(cfg.families)))]
        lora_rank = int(rng.choice([8, 16, 32]))
        n_records = int(rng.integers(cfg.min_records, cfg.max_records + 1))
        counts = rng.multinomial(n_records, pi)
        accountant = PrivacyAccountant()
        release = release_histogram(
            [int(c) for c in counts],
            rng=rng,
            accountant=accountant,
            categories=cfg.categories,
            mechanism=cfg.dp_mechanism,
            epsilon=cfg.dp_epsilon,
            delta=cfg.dp_delta,
        )
        pass1 = float(np.clip(weights @ skill + rng.normal(0.0, 0.01), 0.0, 1.0))
        reputation = float(np.clip(0.2 + 0.6 * level + rng.normal(0.0, 0.05), 0.0, 1.0))
        org_id = f"org-{idx:05d}"
        features = OrgFeatures(
            family=family,
            size_bucket=size_bucket,
            lora_rank=lora_rank,
            pass1=pass1,
            pass1_delta=0.0,
            categories=cfg.categories,
            category_hist=release.histogram,
            reputation=reputation,
            credits=0.0,
        )
        self.orgs[org_id] = SimOrg(org_id, pi, skill, weights, size_bucket, family, features, accountant)

    def active_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self.orgs))

    def features(self) -> dict[str, OrgFeatures]:
        return {oid: o.features for oid, o in self.orgs.items()}

    def true_gain_matrix(self, org_ids: Sequence[str]) -> FloatArray:
        """Expected gain ``[teacher, student]`` for ``org_ids`` (diagonal is meaningless)."""
        g = self.config.gain
        orgs = [self.orgs[o] for o in org_ids]
        skill = np.stack([o.skill for o in orgs])
        w = np.stack([o.weights for o in orgs])
        diff = skill[:, None, :] - skill[None, :, :]  # [t, s, k] = skill_t - skill_s
        headroom = (np.maximum(diff, 0.0) * w[None, :, :]).sum(axis=2)
        harm = (np.maximum(-diff, 0.0) * w[None, :, :]).sum(axis=2)
        size = np.array([o.size_bucket for o in orgs], dtype=np.float64)
        fam = np.array([o.family for o in orgs])
        gain: FloatArray = (
            g.max_gain * (1.0 - np.exp(-headroom / g.kappa))
            - g.harm * harm
            - g.size_cost * np.abs(size[:, None] - size[None, :])
            + g.family_bonus * (fam[:, None] == fam[None, :])
        )
        return gain

    def report(
        self, round: int, org_ids: tuple[str, ...], pairs: tuple[DirectedPair, ...]
    ) -> dict[DirectedPair, float | None]:
        """Noisy reported gains for ``pairs`` (``None`` = missing report)."""
        n = len(org_ids)
        rng = np.random.default_rng([self.config.seed, _REPORT_STREAM, round])
        noise = rng.normal(0.0, self.config.noise_std, size=(n, n))
        lost = rng.random((n, n)) < self.config.p_missing
        pos = {oid: i for i, oid in enumerate(org_ids)}
        gain = self.true_gain_matrix(org_ids)
        out: dict[DirectedPair, float | None] = {}
        for t, s in pairs:
            i, j = pos[t], pos[s]
            out[(t, s)] = None if lost[i, j] else float(gain[i, j] + noise[i, j])
        return out

    def advance(self, round: int) -> None:
        """Churn between ``round`` and the next: leaves, then joins."""
        cfg = self.config
        if cfg.churn <= 0.0:
            return
        rng = np.random.default_rng([cfg.seed, _CHURN_STREAM, round])
        ids = self.active_ids()
        leave = rng.random(len(ids)) < cfg.churn
        for oid, gone in zip(ids, leave.tolist(), strict=True):
            if gone and len(self.orgs) > cfg.min_orgs:
                del self.orgs[oid]
        for _ in range(int(rng.poisson(cfg.churn * cfg.n_orgs))):
            self._join()


@dataclass(frozen=True)
class SimResult:
    """Per-round outcome of one simulated run."""

    policy: str
    params_digest: str
    config: SimConfig
    regret: tuple[float, ...]
    chosen_value: tuple[float, ...]
    oracle_value: tuple[float, ...]
    n_orgs: tuple[int, ...]
    n_missing: int
    final_state_digest: str

    @property
    def cumulative_regret(self) -> FloatArray:
        return np.cumsum(np.array(self.regret, dtype=np.float64))

    def summary(self) -> dict[str, Any]:
        cum = self.cumulative_regret
        return {
            "policy": self.policy,
            "params_digest": self.params_digest,
            "rounds": len(self.regret),
            "cumulative_regret": float(cum[-1]) if len(cum) else 0.0,
            "mean_regret_last_20": float(np.mean(self.regret[-20:])) if self.regret else 0.0,
            "mean_chosen_value": float(np.mean(self.chosen_value)) if self.chosen_value else 0.0,
            "mean_oracle_value": float(np.mean(self.oracle_value)) if self.oracle_value else 0.0,
            "orgs_first_last": [self.n_orgs[0], self.n_orgs[-1]] if self.n_orgs else [],
            "missing_reports": self.n_missing,
            "final_state_digest": self.final_state_digest,
            "config": self.config.to_dict(),
        }


def run_simulation(
    params: PolicyParams,
    config: SimConfig,
    *,
    policy: Policy | None = None,
    on_round: Callable[[int], None] | None = None,
) -> SimResult:
    """Run ``config.rounds`` rounds of the federation under ``params`` (or a ready ``policy``)."""
    fed = Federation(config)
    if policy is None:
        policy = make_policy(params, gain_fn=fed.true_gain_matrix)
    regret: list[float] = []
    chosen_value: list[float] = []
    oracle_value: list[float] = []
    n_orgs: list[int] = []
    n_missing = 0
    for r in range(config.rounds):
        ids = fed.active_ids()
        gain = fed.true_gain_matrix(ids)
        np.fill_diagonal(gain, -np.inf)
        best = match(gain, capacity=params.capacity).total
        decision = policy.select(r, ids, fed.features(), rng_for_round(config.seed, r))
        pos = {oid: i for i, oid in enumerate(decision.org_ids)}
        value = math.fsum(float(gain[pos[t], pos[s]]) for t, s in decision.pairs)
        reports = fed.report(r, decision.org_ids, decision.pairs)
        n_missing += sum(1 for v in reports.values() if v is None)
        policy.observe(decision, reports)
        regret.append(best - value)
        chosen_value.append(value)
        oracle_value.append(best)
        n_orgs.append(len(ids))
        fed.advance(r)
        if on_round is not None:
            on_round(r)
    return SimResult(
        policy=params.name,
        params_digest=params.digest(),
        config=config,
        regret=tuple(regret),
        chosen_value=tuple(chosen_value),
        oracle_value=tuple(oracle_value),
        n_orgs=tuple(n_orgs),
        n_missing=n_missing,
        final_state_digest=policy.state_digest(),
    )


def summarise(results: Mapping[str, SimResult]) -> dict[str, dict[str, Any]]:
    """``summary()`` of several runs, keyed by name."""
    return {k: v.summary() for k, v in results.items()}
