"""Disjoint, non-IID splits of the generated suite.

Draw order is fixed (test, novel test, transfer, then each organisation) and every split
has its own seeded RNG stream, so the test set of a given seed does not change when the
number or size of organisations changes. Disjointness is by problem key (the prompt text)
across *all* splits; :func:`check_disjoint` proves it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from agent.data.problems import Problem, instantiate, prompt_key
from agent.data.templates import CATEGORIES, TEMPLATES, Role, templates

_MAX_REJECTIONS = 2000


@dataclass(frozen=True)
class TransferItem:
    """A public transfer-set entry: a prompt and its public example tests, nothing else."""

    pid: str
    category: str
    entry_point: str
    prompt: str
    public_tests: tuple[str, ...]

    @classmethod
    def from_problem(cls, p: Problem) -> TransferItem:
        return cls(p.pid, p.category, p.entry_point, p.prompt, p.public_tests)


@dataclass(frozen=True)
class OrgData:
    org: str
    mix: dict[str, float]
    train: tuple[Problem, ...]
    val: tuple[Problem, ...]
    test: tuple[Problem, ...] = ()  # the organisation's own test set, drawn from its mix

    def category_counts(self) -> Counter[str]:
        return Counter(p.category for p in self.train + self.val)


@dataclass(frozen=True)
class Suite:
    seed: int
    alpha: float
    orgs: tuple[OrgData, ...]
    transfer: tuple[TransferItem, ...]
    test: tuple[Problem, ...]
    test_novel: tuple[Problem, ...] = field(default=())


class _Pool:
    """Draws fresh problems of a category/role, never returning a key drawn before."""

    def __init__(self, forbidden: set[str] | None = None) -> None:
        self.used: set[str] = set(forbidden or ())

    def draw(self, category: str, role: Role, rng: random.Random) -> Problem:
        pool = templates(role=role, category=category)
        if not pool:
            raise ValueError(f"no {role} templates in category {category!r}")
        for _ in range(_MAX_REJECTIONS):
            p = instantiate(rng.choice(pool), rng)
            if p.key not in self.used:
                self.used.add(p.key)
                return p
        raise ValueError(f"category {category!r} ({role}) is exhausted: lower the split sizes or raise alpha")


def _balanced(pool: _Pool, per_category: int, role: Role, rng: random.Random) -> tuple[Problem, ...]:
    return tuple(pool.draw(c, role, rng) for c in CATEGORIES for _ in range(per_category))


def dirichlet_mix(alpha: float, rng: np.random.Generator) -> dict[str, float]:
    """Category proportions of one organisation: a Dirichlet(alpha) draw (small alpha -> specialist)."""
    if alpha <= 0:
        raise ValueError("alpha must be positive")
    props = rng.dirichlet([alpha] * len(CATEGORIES))
    return {c: float(p) for c, p in zip(CATEGORIES, props, strict=True)}


def _counts(mix: dict[str, float], n: int, rng: np.random.Generator) -> dict[str, int]:
    draws = rng.multinomial(n, [mix[c] for c in CATEGORIES])
    return {c: int(k) for c, k in zip(CATEGORIES, draws, strict=True)}


def build_suite(
    *,
    n_orgs: int = 6,
    train_per_org: int = 64,
    val_per_org: int = 16,
    transfer_per_category: int = 8,
    test_per_category: int = 10,
    novel_per_category: int = 4,
    alpha: float = 0.1,
    seed: int = 0,
    train_sizes: Sequence[int] | None = None,
    test_per_org: int = 0,
) -> Suite:
    """Generate the whole federation data set for one seed.

    ``train_sizes`` (one per organisation) overrides ``train_per_org``; ``test_per_org`` > 0
    gives each organisation its own test set drawn from its mix (after its validation set).
    """
    sizes = [train_per_org] * n_orgs if train_sizes is None else list(train_sizes)
    if len(sizes) != n_orgs:
        raise ValueError("train_sizes needs one size per organisation")
    if n_orgs < 1 or min(sizes) < 1 or val_per_org < 1 or test_per_org < 0:
        raise ValueError("n_orgs, training and validation sizes must be positive")
    pool = _Pool()
    test = _balanced(pool, test_per_category, Role.PRIVATE, random.Random(f"{seed}/test"))
    novel = _balanced(pool, novel_per_category, Role.HELD_OUT, random.Random(f"{seed}/novel"))
    transfer = _balanced(pool, transfer_per_category, Role.PRIVATE, random.Random(f"{seed}/transfer"))
    mix_rng = np.random.default_rng([seed, 7919])
    orgs: list[OrgData] = []
    for i in range(n_orgs):
        mix = dirichlet_mix(alpha, mix_rng)
        rng = random.Random(f"{seed}/org{i}")
        splits: list[tuple[Problem, ...]] = []
        for size in (sizes[i], val_per_org, test_per_org):
            if size == 0:
                splits.append(())
                continue
            counts = _counts(mix, size, mix_rng)
            drawn = [pool.draw(c, Role.PRIVATE, rng) for c in CATEGORIES for _ in range(counts[c])]
            rng.shuffle(drawn)
            splits.append(tuple(drawn))
        orgs.append(OrgData(f"org{i}", mix, splits[0], splits[1], splits[2]))
    return Suite(
        seed=seed,
        alpha=alpha,
        orgs=tuple(orgs),
        transfer=tuple(TransferItem.from_problem(p) for p in transfer),
        test=test,
        test_novel=novel,
    )


def pretraining_corpus(
    n: int, *, seed: int = 10_000, exclude: set[str] | None = None, code_fraction: float = 0.5
) -> list[Problem]:
    """Public pretraining documents, like public code a base model would have seen.

    Two kinds, mixed: (1) documented problems from PUBLIC templates only (the prompt ->
    body format), (2) with probability ``code_fraction``, *anonymous* code (generic name,
    no docstring) from PUBLIC and PRIVATE templates, which teaches the syntax the private
    tasks use without ever pairing a task description with its solution. HELD_OUT
    templates never appear, and no key in ``exclude`` is emitted. Own seed.
    """
    rng = random.Random(f"{seed}/pretrain")
    pub = templates(role=Role.PUBLIC)
    code = [t for t in TEMPLATES if t.role != Role.HELD_OUT]
    out: list[Problem] = []
    while len(out) < n:
        if rng.random() < code_fraction:
            p = instantiate(rng.choice(code), rng, anonymous=True)
        else:
            p = instantiate(rng.choice(pub), rng)
        if exclude is None or p.key not in exclude:
            out.append(p)
    return out


def all_keys(suite: Suite) -> dict[str, list[str]]:
    """Split name -> problem keys (transfer items keyed by the same prompt hash)."""
    keys: dict[str, list[str]] = {
        "test": [p.key for p in suite.test],
        "test_novel": [p.key for p in suite.test_novel],
        "transfer": [prompt_key(t.prompt) for t in suite.transfer],
    }
    for o in suite.orgs:
        keys[f"{o.org}/train"] = [p.key for p in o.train]
        keys[f"{o.org}/val"] = [p.key for p in o.val]
        keys[f"{o.org}/test"] = [p.key for p in o.test]
    return keys


def check_disjoint(suite: Suite) -> None:
    """Raise ``AssertionError`` if any two splits (or two entries of one split) share a problem."""
    seen: dict[str, str] = {}
    for split, keys in all_keys(suite).items():
        for k in keys:
            if k in seen:
                raise AssertionError(f"problem {k} is in both {seen[k]} and {split}")
            seen[k] = split


def split_rows(suite: Suite) -> list[dict[str, object]]:
    """One row per organisation: its Dirichlet mix and category counts (for tables and JSON)."""
    rows: list[dict[str, object]] = []
    for o in suite.orgs:
        counts = o.category_counts()
        rows.append(
            {
                "org": o.org,
                "train": len(o.train),
                "val": len(o.val),
                "test": len(o.test),
                "mix": {c: round(o.mix[c], 3) for c in CATEGORIES},
                "counts": {c: counts.get(c, 0) for c in CATEGORIES},
            }
        )
    return rows
