"""Pairing policies behind one interface: ``linucb``, ``random``, ``heuristic`` and ``oracle``.

A round, seen by a policy::

    decision = policy.select(round, org_ids, features, rng)   # score all arms, match
    ...                                                       # the round runs on chain
    policy.observe(decision, rewards)                         # learn from reported gains

``rewards`` maps a chosen pair ``(teacher_id, student_id)`` to its reported gain, or to ``None``
when the report is missing; a chosen pair absent from the mapping is missing too. Missing reports
are *skipped* (the bandit learns nothing about that pair), never read as a zero gain. Rewards
must be finite; a reward for a pair that was not chosen is an error. Observed pairs are applied
in the decision's canonical pair order, so the bandit state depends only on the set of reports.

`PolicyParams` is everything that determines a policy's decisions; its `PolicyParams.digest`
(sha256 of canonical JSON) is what a matchmaker commits to on chain.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from market.categories import DEFAULT_CATEGORIES, check_categories
from matchmaker.canonical import canonical_json, sha256_hex
from matchmaker.context import (
    CONTEXT_VERSION,
    FeatureTable,
    all_arms,
    arm_index,
    build_contexts,
    context_dim,
    iter_arm_blocks,
)
from matchmaker.features import OrgFeatures
from matchmaker.linucb import BetaSchedule, LinUCB, LinUCBConfig
from matchmaker.matching import match

PolicyName = Literal["linucb", "random", "heuristic", "oracle"]
POLICY_NAMES: tuple[str, ...] = ("linucb", "random", "heuristic", "oracle")
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
DirectedPair = tuple[str, str]
#: ``gain_fn(org_ids) -> (n, n)`` true expected gains ``[teacher, student]`` (simulation only).
GainFunction = Callable[[Sequence[str]], FloatArray]
_STATELESS_DIGEST = sha256_hex(b"knexa.policy.stateless.v1")


@dataclass(frozen=True)
class PolicyParams:
    """Everything that determines a policy's decisions. Frozen; `digest` goes on chain.

    ``beta0``/``beta_schedule``/``beta_tau``/``ridge``/``normalise_rewards`` configure LinUCB (see
    `LinUCBConfig`); ``capacity``/``threshold``/``top_k`` configure `match`.
    """

    name: PolicyName = "linucb"
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    context_version: str = CONTEXT_VERSION
    capacity: int = 1
    threshold: float | None = None
    top_k: int | None = None
    ridge: float = 1.0
    beta0: float = 0.5
    beta_schedule: BetaSchedule = "inverse_sqrt"
    beta_tau: float = 20.0
    normalise_rewards: bool = True

    def __post_init__(self) -> None:
        if self.name not in POLICY_NAMES:
            raise ValueError(f"unknown policy {self.name!r}; expected one of {POLICY_NAMES}")
        object.__setattr__(self, "categories", check_categories(self.categories))
        if self.context_version != CONTEXT_VERSION:
            raise ValueError(f"unsupported context version {self.context_version!r}")
        if isinstance(self.capacity, bool) or not isinstance(self.capacity, int) or self.capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {self.capacity!r}")
        if self.threshold is not None:
            if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)):
                raise ValueError("threshold must be a number or None")
            if not math.isfinite(self.threshold):
                raise ValueError("threshold must be finite")
            object.__setattr__(self, "threshold", float(self.threshold))
        if self.top_k is not None and (
            isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1
        ):
            raise ValueError(f"top_k must be a positive int or None, got {self.top_k!r}")
        self.linucb_config()  # validates the bandit's parameters

    def linucb_config(self) -> LinUCBConfig:
        return LinUCBConfig(
            dim=context_dim(len(self.categories)),
            ridge=self.ridge,
            beta0=self.beta0,
            beta_schedule=self.beta_schedule,
            beta_tau=self.beta_tau,
            normalise_rewards=self.normalise_rewards,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["categories"] = list(self.categories)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyParams:
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown policy parameters: {sorted(unknown)}")
        kwargs = dict(data)
        if "categories" in kwargs:
            kwargs["categories"] = tuple(kwargs["categories"])
        return cls(**kwargs)

    def canonical_json(self) -> bytes:
        return canonical_json({"schema": "knexa.policy.v1", **self.to_dict()})

    def digest(self) -> str:
        """sha256 (hex) of the canonical JSON of these parameters alone.

        A `Decision` carries it to say which parameters produced it. What goes on chain as a
        round's `policyDigest` is `policy_commitment`, which binds the seed as well.
        """
        return sha256_hex(self.canonical_json())


COMMITMENT_SCHEMA = "knexa.policy-commitment.v1"


def policy_commitment(params: PolicyParams, seed: int) -> str:
    """Hex sha256 committing to the policy parameters and seed: a round's on-chain `policyDigest`.

    The seed of the `random` policy (and of tie-breaks) is committed too, so it cannot be re-rolled
    per round; `knexa matchmaker policy --seed S` prints exactly this value.
    """
    return sha256_hex(canonical_json({"schema": COMMITMENT_SCHEMA, "params": params.to_dict(), "seed": seed}))


@dataclass(frozen=True, eq=False)
class Decision:
    """One round's decision: every candidate arm with its scores, and the chosen pairs.

    Arms are in canonical order (`matchmaker.context.all_arms` over ``org_ids``); ``pairs`` are
    sorted by (teacher id, student id) and ``chosen_arms[i]`` is the arm index of ``pairs[i]``.
    The contexts of all arms are recomputed on demand by `contexts` (they are a pure function of
    the public features, and would take ``n^2 d`` floats to keep).
    """

    round: int
    policy: str
    params_digest: str
    state_digest: str
    org_ids: tuple[str, ...]
    table: FeatureTable
    teacher_idx: IntArray
    student_idx: IntArray
    mean: FloatArray
    bonus: FloatArray
    score: FloatArray
    beta: float
    pairs: tuple[DirectedPair, ...]
    chosen_arms: IntArray
    chosen_contexts: FloatArray
    total_score: float = field(default=0.0)

    @property
    def n_arms(self) -> int:
        return len(self.teacher_idx)

    def contexts(self) -> FloatArray:
        """Contexts of all arms, ``(n_arms, d)``, recomputed from the features."""
        return build_contexts(self.table, self.teacher_idx, self.student_idx)

    def score_matrix(self) -> FloatArray:
        """``score[teacher, student]`` as an ``(n, n)`` matrix, ``-inf`` on the diagonal."""
        return _to_matrix(self.table.n, self.teacher_idx, self.student_idx, self.score)

    def to_record(self, *, include_arms: bool = False) -> dict[str, Any]:
        """JSON-able summary (exact floats) for a decision record; all arms only on request."""
        chosen = self.chosen_arms
        rec: dict[str, Any] = {
            "round": self.round,
            "policy": self.policy,
            "params_digest": self.params_digest,
            "state_digest": self.state_digest,
            "org_ids": list(self.org_ids),
            "beta": self.beta,
            "pairs": [
                {
                    "teacher": t,
                    "student": s,
                    "arm": int(a),
                    "mean": self.mean[a].item(),
                    "bonus": self.bonus[a].item(),
                    "score": self.score[a].item(),
                    "context": self.chosen_contexts[i].tolist(),
                }
                for i, ((t, s), a) in enumerate(zip(self.pairs, chosen.tolist(), strict=True))
            ],
            "total_score": self.total_score,
        }
        if include_arms:
            rec["arms"] = {
                "mean": self.mean.tolist(),
                "bonus": self.bonus.tolist(),
                "score": self.score.tolist(),
            }
        return rec


@dataclass(frozen=True)
class ObserveResult:
    """What `Policy.observe` did with a round's reports."""

    round: int
    used: tuple[DirectedPair, ...]
    missing: tuple[DirectedPair, ...]
    state_digest: str


def _to_matrix(n: int, t: IntArray, s: IntArray, values: FloatArray) -> FloatArray:
    mat = np.full((n, n), -np.inf, dtype=np.float64)
    mat[t, s] = values
    return mat


def rng_for_round(seed: int, round: int) -> np.random.Generator:
    """A reproducible generator for one round (for the ``random`` policy and simulations)."""
    return np.random.default_rng([seed, round])


class Policy(ABC):
    """Score every directed pair, match, and (for learning policies) learn from reported gains."""

    def __init__(self, params: PolicyParams) -> None:
        self.params = params

    @property
    def name(self) -> str:
        return self.params.name

    def state_digest(self) -> str:
        """Digest of the learnt state (a constant for stateless policies)."""
        return _STATELESS_DIGEST

    @abstractmethod
    def _score_block(
        self, table: FeatureTable, teachers: IntArray, students: IntArray, rng: np.random.Generator
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(mean, bonus, score)`` for one block of canonical arms."""

    def _beta(self) -> float:
        return 0.0

    def select(
        self, round: int, orgs: Sequence[str], features: Mapping[str, OrgFeatures], rng: np.random.Generator
    ) -> Decision:
        """Score every directed pair among ``orgs`` (canonicalised: sorted, unique) and match.

        ``features`` must hold an entry for every organization, with this policy's categories.
        ``rng`` is used by the ``random`` policy only; pass `rng_for_round` so that a replay can
        draw the same numbers. Invalid input raises ``ValueError`` and changes nothing.
        """
        if isinstance(round, bool) or not isinstance(round, int) or round < 0:
            raise ValueError(f"round must be a non-negative int, got {round!r}")
        table = FeatureTable.build(orgs, features, self.params.categories)
        n = table.n
        t_all, s_all = all_arms(n)
        m = len(t_all)
        mean = np.empty(m, dtype=np.float64)
        bonus = np.empty(m, dtype=np.float64)
        score = np.empty(m, dtype=np.float64)
        pos = 0
        for t_blk, s_blk in iter_arm_blocks(n):
            mu, bo, sc = self._score_block(table, t_blk, s_blk, rng)
            k = len(t_blk)
            mean[pos : pos + k], bonus[pos : pos + k], score[pos : pos + k] = mu, bo, sc
            pos += k
        matching = match(
            _to_matrix(n, t_all, s_all, score),
            capacity=self.params.capacity,
            threshold=self.params.threshold,
            top_k=self.params.top_k,
        )
        chosen = arm_index(n, matching.teachers, matching.students)
        return Decision(
            round=round,
            policy=self.name,
            params_digest=self.params.digest(),
            state_digest=self.state_digest(),
            org_ids=table.org_ids,
            table=table,
            teacher_idx=t_all,
            student_idx=s_all,
            mean=mean,
            bonus=bonus,
            score=score,
            beta=self._beta(),
            pairs=tuple((table.org_ids[t], table.org_ids[s]) for t, s in matching.pairs()),
            chosen_arms=chosen,
            chosen_contexts=np.ascontiguousarray(build_contexts(table, matching.teachers, matching.students)),
            total_score=matching.total,
        )

    def split_rewards(
        self, decision: Decision, rewards: Mapping[DirectedPair, float | None]
    ) -> tuple[IntArray, FloatArray, tuple[DirectedPair, ...], tuple[DirectedPair, ...]]:
        """Validate ``rewards`` against ``decision``: (chosen-row indices, rewards, used, missing)."""
        if decision.params_digest != self.params.digest():
            raise ValueError("decision was made under other policy parameters")
        chosen = set(decision.pairs)
        stray = [p for p in rewards if p not in chosen]
        if stray:
            raise ValueError(f"rewards for pairs that were not chosen: {stray[:3]}")
        rows: list[int] = []
        values: list[float] = []
        used: list[DirectedPair] = []
        missing: list[DirectedPair] = []
        for i, pair in enumerate(decision.pairs):
            r = rewards.get(pair)
            if r is None:
                missing.append(pair)
                continue
            if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r):
                raise ValueError(f"reward for {pair} must be a finite number or None, got {r!r}")
            rows.append(i)
            values.append(float(r))
            used.append(pair)
        return np.array(rows, dtype=np.int64), np.array(values, dtype=np.float64), tuple(used), tuple(missing)

    def observe(self, decision: Decision, rewards: Mapping[DirectedPair, float | None]) -> ObserveResult:
        """Take a round's reports into account (stateless policies only validate them)."""
        _, _, used, missing = self.split_rewards(decision, rewards)
        return ObserveResult(decision.round, used, missing, self.state_digest())


class LinUCBPolicy(Policy):
    """Scores arms by LinUCB's upper confidence bound; learns from every reported gain."""

    def __init__(self, params: PolicyParams, bandit: LinUCB | None = None) -> None:
        super().__init__(params)
        cfg = params.linucb_config()
        if bandit is not None and bandit.config != cfg:
            raise ValueError("bandit config does not match the policy parameters")
        self.bandit = bandit if bandit is not None else LinUCB(cfg)

    def state_digest(self) -> str:
        return self.bandit.state_digest()

    def _beta(self) -> float:
        return self.bandit.beta()

    def _score_block(
        self, table: FeatureTable, teachers: IntArray, students: IntArray, rng: np.random.Generator
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        return tuple(self.bandit.scores(build_contexts(table, teachers, students)))  # type: ignore[return-value]

    def observe(self, decision: Decision, rewards: Mapping[DirectedPair, float | None]) -> ObserveResult:
        """Update the bandit with the reported pairs, in canonical pair order; skip missing ones."""
        rows, values, used, missing = self.split_rewards(decision, rewards)
        self.bandit.update(decision.chosen_contexts[rows], values, round=decision.round)
        return ObserveResult(decision.round, used, missing, self.bandit.state_digest())


class RandomPolicy(Policy):
    """Uniform random scores from the given generator, then the same matching: a random matching."""

    def _score_block(
        self, table: FeatureTable, teachers: IntArray, students: IntArray, rng: np.random.Generator
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        u = rng.random(len(teachers))
        return np.zeros(len(teachers)), np.zeros(len(teachers)), u


class HeuristicPolicy(Policy):
    """No learning: ``score = p_t * (1 - sum_k h_t[k] h_s[k])``, teacher skill x complementarity.

    It is context feature ``K + 4`` (so LinUCB can represent it, and more).
    """

    def _score_block(
        self, table: FeatureTable, teachers: IntArray, students: IntArray, rng: np.random.Generator
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        k = len(table.categories)
        x = build_contexts(table, teachers, students)
        h = np.ascontiguousarray(x[:, k + 4])
        return h, np.zeros(len(teachers)), h


class OraclePolicy(Policy):
    """Simulation only: scores are the true expected gains given by ``gain_fn``."""

    def __init__(self, params: PolicyParams, gain_fn: GainFunction) -> None:
        super().__init__(params)
        self.gain_fn = gain_fn
        self._cache: tuple[tuple[str, ...], FloatArray] | None = None

    def _score_block(
        self, table: FeatureTable, teachers: IntArray, students: IntArray, rng: np.random.Generator
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        if self._cache is None or self._cache[0] != table.org_ids:
            g = np.asarray(self.gain_fn(table.org_ids), dtype=np.float64)
            if g.shape != (table.n, table.n):
                raise ValueError(f"gain_fn returned shape {g.shape}, expected {(table.n, table.n)}")
            self._cache = (table.org_ids, g)
        v = self._cache[1][teachers, students]
        return v, np.zeros(len(teachers)), v


def make_policy(
    params: PolicyParams, *, gain_fn: GainFunction | None = None, bandit: LinUCB | None = None
) -> Policy:
    """Build the policy named by ``params.name`` (``gain_fn`` is required for ``oracle``)."""
    if params.name == "linucb":
        return LinUCBPolicy(params, bandit)
    if params.name == "random":
        return RandomPolicy(params)
    if params.name == "heuristic":
        return HeuristicPolicy(params)
    if gain_fn is None:
        raise ValueError("the oracle policy needs the true gain function (simulation only)")
    return OraclePolicy(params, gain_fn)
