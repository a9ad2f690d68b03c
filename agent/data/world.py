"""The federation's world: who the organisations are, before any training happens.

Two worlds share one generator (:func:`plan_world`) and one suite builder (:func:`build_world_suite`):

* ``hetero`` (the benchmark's default), a cross-silo market with the spread real ones have:

  - category mixes are Dirichlet(``alpha`` = 0.1) draws, as in every world here (specialists);
  - private training sets are log-uniform between ``min_train`` and ``max_train`` (30 and 1,000),
    *stratified*: organisation ``i`` gets quantile ``(pi(i) + U_i) / n`` of the log-uniform law for
    a random permutation ``pi`` and uniform ``U_i``, so every seed spans small clinics to large
    hospitals instead of leaving the spread to chance;
  - base models of two strengths: a random half of the organisations start from the ``-s`` zoo
    (about 3-4x the parameters), the rest from the ``-t`` zoo; families cycle within each half;
  - ``n_low_quality`` participants (1) whose private labels are poor (``label_noise``: that share
    of their training solutions is replaced by the solution of a different task, so their model
    passes public tests less often) and whose bundles carry noisy logits (``logit_noise``: the std
    of Gaussian noise added to their logits before the top-k is taken).

* ``control``, the old homogeneous world: every organisation has ``control_train`` (160) problems,
  a tiny base (families cycling), good data.

Everything is drawn from ``numpy.random.default_rng([seed, 0x3A11D])`` (the plan) and the suite's own
streams (the problems), so a (config, seed) pair is one world, and the balanced test set of a seed
does not depend on the world's kind. Validation (64) and own test (64) sets follow each
organisation's mix; the balanced global test has 16 problems per category; the public transfer set
16 prompts per category. All splits are disjoint by prompt (:func:`agent.data.splits.check_disjoint`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from agent.data.problems import Problem
from agent.data.splits import OrgData, Suite, build_suite

WorldKind = Literal["hetero", "control"]
WORLD_SEED_TAG = 0x3A11D
STRONG: tuple[str, ...] = ("llama-s", "gpt2-s", "neox-s")
WEAK: tuple[str, ...] = ("llama-t", "gpt2-t", "neox-t")


@dataclass(frozen=True)
class WorldConfig:
    kind: WorldKind = "hetero"
    n_orgs: int = 6
    alpha: float = 0.1
    min_train: int = 30
    max_train: int = 1000
    control_train: int = 160
    strong: tuple[str, ...] = STRONG
    weak: tuple[str, ...] = WEAK
    strong_share: float = 0.5
    n_low_quality: int = 1
    label_noise: float = 0.5
    logit_noise: float = 1.0
    val_per_org: int = 64
    test_per_org: int = 64
    test_per_category: int = 16
    transfer_per_category: int = 16

    def __post_init__(self) -> None:
        if self.n_orgs < 2 or not 1 <= self.min_train <= self.max_train:
            raise ValueError("a world needs two organisations and 1 <= min_train <= max_train")
        if not 0 <= self.n_low_quality <= self.n_orgs or not 0.0 <= self.label_noise <= 1.0:
            raise ValueError("n_low_quality must be within n_orgs and label_noise within [0, 1]")

    def base_names(self) -> tuple[str, ...]:
        """Every base model the world may use (what has to be pretrained)."""
        return self.weak if self.kind == "control" else (*self.strong, *self.weak)


@dataclass(frozen=True)
class OrgPlan:
    """One organisation's place in the world: public facts (size, base) and hidden ones (quality)."""

    name: str
    train_size: int
    base: str
    strong: bool
    low_quality: bool
    label_noise: float
    logit_noise: float


def plan_world(cfg: WorldConfig, seed: int) -> list[OrgPlan]:
    """Sizes, bases and quality of every organisation for one seed (see the module docstring)."""
    rng = np.random.default_rng([seed, WORLD_SEED_TAG])
    n = cfg.n_orgs
    if cfg.kind == "control":
        return [
            OrgPlan(f"org{i}", cfg.control_train, cfg.weak[i % len(cfg.weak)], False, False, 0.0, 0.0)
            for i in range(n)
        ]
    quantiles = (rng.permutation(n) + rng.uniform(size=n)) / n
    lo, hi = math.log(cfg.min_train), math.log(cfg.max_train)
    sizes = [round(math.exp(lo + float(q) * (hi - lo))) for q in quantiles]
    n_strong = round(cfg.strong_share * n)
    strong = {int(i) for i in rng.permutation(n)[:n_strong]}
    low = {int(i) for i in rng.permutation(n)[: cfg.n_low_quality]}
    plans: list[OrgPlan] = []
    counters = {True: 0, False: 0}
    for i in range(n):
        is_strong = i in strong
        table = cfg.strong if is_strong else cfg.weak
        base = table[counters[is_strong] % len(table)]
        counters[is_strong] += 1
        bad = i in low
        plans.append(
            OrgPlan(
                f"org{i}",
                sizes[i],
                base,
                is_strong,
                bad,
                cfg.label_noise if bad else 0.0,
                cfg.logit_noise if bad else 0.0,
            )
        )
    return plans


def corrupt_labels(train: tuple[Problem, ...], share: float, rng: random.Random) -> tuple[Problem, ...]:
    """Replace ``share`` of the reference solutions by the solution of a task of another template
    (or ``return None`` when there is none): the poor labels of a low-quality participant."""
    if share <= 0 or not train:
        return train
    out = list(train)
    for i in rng.sample(range(len(out)), round(share * len(out))):
        others = [p for p in train if p.template != out[i].template]
        wrong = rng.choice(others).solution if others else "    return None\n"
        out[i] = replace(out[i], solution=wrong)
    return tuple(out)


def build_world_suite(cfg: WorldConfig, seed: int) -> tuple[Suite, list[OrgPlan]]:
    """The world's data for one seed: the suite (low-quality labels already corrupted) and the plan."""
    plans = plan_world(cfg, seed)
    suite = build_suite(
        n_orgs=cfg.n_orgs,
        train_sizes=[p.train_size for p in plans],
        val_per_org=cfg.val_per_org,
        transfer_per_category=cfg.transfer_per_category,
        test_per_category=cfg.test_per_category,
        test_per_org=cfg.test_per_org,
        alpha=cfg.alpha,
        seed=seed,
    )
    orgs: list[OrgData] = []
    for org, plan in zip(suite.orgs, plans, strict=True):
        noisy = corrupt_labels(org.train, plan.label_noise, random.Random(f"{seed}/{org.org}/labels"))
        orgs.append(replace(org, train=noisy))
    return replace(suite, orgs=tuple(orgs)), plans


def world_rows(suite: Suite, plans: list[OrgPlan]) -> list[dict[str, object]]:
    """The world as a table: one row per organisation (for the README and the JSON)."""
    rows: list[dict[str, object]] = []
    for org, plan in zip(suite.orgs, plans, strict=True):
        top = sorted(org.mix, key=lambda c: -org.mix[c])[:2]
        rows.append(
            {
                "org": org.org,
                "train": len(org.train),
                "val": len(org.val),
                "test": len(org.test),
                "base": plan.base,
                "strong": plan.strong,
                "low_quality": plan.low_quality,
                "top_categories": {c: round(org.mix[c], 2) for c in top},
            }
        )
    return rows
