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
from functools import cached_property
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
from matchmaker.linucb import BetaSchedule, LinUCB, LinUCBConfig, score_contexts
from matchmaker.matching import Matching, eligible_mask, match
from matchmaker.mechanisms import (
    PAIR_FEATURE_NAMES,
    PairHistory,
    PublicSignals,
    adjust_for_repeats,
    extended_contexts,
    seeded_order,
)

PolicyName = Literal["linucb", "random", "heuristic", "oracle"]
TieBreak = Literal["index", "seeded"]
_MECHANISM_DEFAULTS: dict[str, Any] = {
    "tie_break": "index",
    "repeat_penalty": 0.0,
    "repeat_decay": 0.5,
    "repeat_cap": None,
    "repeat_window": 10,
    "discount": 1.0,
    "pair_context": False,
}
POLICY_NAMES: tuple[str, ...] = ("linucb", "random", "heuristic", "oracle")
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
DirectedPair = tuple[str, str]
#: ``gain_fn(org_ids) -> (n, n)`` true expected gains ``[teacher, student]`` (simulation only).
GainFunction = Callable[[Sequence[str]], FloatArray]
_STATELESS_DIGEST = sha256_hex(b"knexa.policy.stateless.v1")
#: ``contexts(table, teachers, students) -> (m, d)`` float64: the arms' contexts.
ContextFn = Callable[[FeatureTable, IntArray, IntArray], FloatArray]
#: From this many organizations LinUCB scores with the compiled kernel (same bits, less time);
#: below, numpy avoids the kernel's one-off load.
KERNEL_MIN_ORGS = 64


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
    # Mechanisms (off by default; left out of the digest while at their defaults, so existing
    # commitments keep their value): seeded tie-breaking, repeat decay and cap, discounting.
    tie_break: TieBreak = "index"
    repeat_penalty: float = 0.0
    repeat_decay: float = 0.5
    repeat_cap: int | None = None
    repeat_window: int = 10
    discount: float = 1.0
    # LinUCB reads the pair's history and public signals too (`matchmaker.mechanisms.pair_features`
    # appended to the base context): ``select`` then needs the ``history`` and ``signals``.
    pair_context: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.pair_context, bool):
            raise ValueError("pair_context must be a bool")
        if self.tie_break not in ("index", "seeded"):
            raise ValueError(f"tie_break must be 'index' or 'seeded', got {self.tie_break!r}")
        for name in ("repeat_penalty", "repeat_decay", "discount"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number")
            object.__setattr__(self, name, float(v))
        if self.repeat_penalty < 0 or not 0.0 <= self.repeat_decay <= 1.0:
            raise ValueError("need repeat_penalty >= 0 and 0 <= repeat_decay <= 1")
        if self.repeat_cap is not None and (
            isinstance(self.repeat_cap, bool) or not isinstance(self.repeat_cap, int) or self.repeat_cap < 1
        ):
            raise ValueError("repeat_cap must be a positive int or None")
        if (
            isinstance(self.repeat_window, bool)
            or not isinstance(self.repeat_window, int)
            or self.repeat_window < 1
        ):
            raise ValueError("repeat_window must be a positive int")
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
        extra = len(PAIR_FEATURE_NAMES) if self.pair_context else 0
        return LinUCBConfig(
            dim=context_dim(len(self.categories)) + extra,
            ridge=self.ridge,
            beta0=self.beta0,
            beta_schedule=self.beta_schedule,
            beta_tau=self.beta_tau,
            normalise_rewards=self.normalise_rewards,
            discount=self.discount,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["categories"] = list(self.categories)
        for name, default in _MECHANISM_DEFAULTS.items():
            if d[name] == default:
                del d[name]
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


class ArmParts:
    """Recomputes the ``(mean, bonus)`` parts of a decision's scores for any arms, on demand.

    A decision keeps one ``n x n`` score matrix; the parts would take two more, so they are
    recomputed from a snapshot of what produced them (bit-identical, a pure function).
    """

    def parts(
        self, table: FeatureTable, teachers: IntArray, students: IntArray
    ) -> tuple[FloatArray, FloatArray]:
        """``(mean, bonus)`` of the arms ``(teachers[i], students[i])``."""
        zeros = np.zeros(len(teachers), dtype=np.float64)
        return zeros, zeros.copy()


class _MeanIsScore(ArmParts):
    """Policies without exploration: ``mean = score``, ``bonus = 0``."""

    def __init__(self, scores: FloatArray) -> None:
        self.scores = scores

    def parts(
        self, table: FeatureTable, teachers: IntArray, students: IntArray
    ) -> tuple[FloatArray, FloatArray]:
        return self.scores[teachers, students], np.zeros(len(teachers), dtype=np.float64)


class _LinUCBParts(ArmParts):
    """LinUCB's mean and bonus from a snapshot of ``(theta, L^-1, beta)``."""

    def __init__(
        self,
        theta: FloatArray,
        linv: FloatArray,
        beta: float,
        use_kernel: bool,
        contexts: ContextFn = build_contexts,
    ) -> None:
        self.theta, self.linv, self.beta, self.use_kernel = theta, linv, beta, use_kernel
        self.contexts = contexts

    def parts(
        self, table: FeatureTable, teachers: IntArray, students: IntArray
    ) -> tuple[FloatArray, FloatArray]:
        if self.use_kernel:
            from matchmaker.kernels import pair_scores

            mean, bonus, _ = pair_scores(table, teachers, students, self.theta, self.linv, self.beta)
            return mean, bonus
        sc = score_contexts(self.contexts(table, teachers, students), self.theta, self.linv, self.beta)
        return sc.mean, sc.bonus


@dataclass(frozen=True, eq=False)
class Decision:
    """One round's decision: the scores of every candidate arm, and the chosen pairs.

    Arms are in canonical order (`matchmaker.context.all_arms` over ``org_ids``); ``pairs`` are
    sorted by (teacher id, student id) and ``chosen_arms[i]`` is the arm index of ``pairs[i]``.
    The decision holds one ``n x n`` matrix, ``score_mat[teacher, student]`` (``-inf`` on the
    diagonal). The per-arm views ``teacher_idx``, ``student_idx``, ``score``, ``mean`` and
    ``bonus`` are built on first access (each ``n (n - 1)`` long: at ``n = 10,000`` that is
    0.8 GB apiece, so code that handles large rounds reads `arm_values` for the arms it needs).
    The contexts of all arms are recomputed on demand by `contexts`.
    """

    round: int
    policy: str
    params_digest: str
    state_digest: str
    org_ids: tuple[str, ...]
    table: FeatureTable
    score_mat: FloatArray
    arm_parts: ArmParts
    beta: float
    pairs: tuple[DirectedPair, ...]
    chosen_arms: IntArray
    chosen_contexts: FloatArray
    total_score: float = field(default=0.0)
    context_fn: ContextFn = field(default=build_contexts, repr=False, compare=False)

    @property
    def n_arms(self) -> int:
        n = self.table.n
        return n * (n - 1)

    @cached_property
    def _arms(self) -> tuple[IntArray, IntArray]:
        return all_arms(self.table.n)

    @property
    def teacher_idx(self) -> IntArray:
        return self._arms[0]

    @property
    def student_idx(self) -> IntArray:
        return self._arms[1]

    @cached_property
    def score(self) -> FloatArray:
        """Score of every arm, in canonical arm order."""
        return self.score_mat[self.teacher_idx, self.student_idx]

    @cached_property
    def _parts(self) -> tuple[FloatArray, FloatArray]:
        return self.arm_parts.parts(self.table, self.teacher_idx, self.student_idx)

    @property
    def mean(self) -> FloatArray:
        """Posterior mean of every arm (recomputed on first access)."""
        return self._parts[0]

    @property
    def bonus(self) -> FloatArray:
        """Exploration bonus (before ``beta``) of every arm (recomputed on first access)."""
        return self._parts[1]

    def arm_pairs(self, arms: IntArray) -> tuple[IntArray, IntArray]:
        """Teacher and student indices of the given arm indices (without building all arms)."""
        a = np.asarray(arms, dtype=np.int64)
        n = self.table.n
        teachers = a // (n - 1)
        rest = a - teachers * (n - 1)
        students = rest + (rest >= teachers).astype(np.int64)
        return teachers, students

    def arm_values(self, arms: IntArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(mean, bonus, score)`` of the given arm indices only."""
        teachers, students = self.arm_pairs(arms)
        mean, bonus = self.arm_parts.parts(self.table, teachers, students)
        return mean, bonus, self.score_mat[teachers, students]

    def contexts(self) -> FloatArray:
        """Contexts of all arms, ``(n_arms, d)``, recomputed from the features."""
        return self.context_fn(self.table, self.teacher_idx, self.student_idx)

    def score_matrix(self) -> FloatArray:
        """``score[teacher, student]`` as an ``(n, n)`` matrix, ``-inf`` on the diagonal (a copy)."""
        return self.score_mat.copy()

    def to_record(self, *, include_arms: bool = False) -> dict[str, Any]:
        """JSON-able summary (exact floats) for a decision record; all arms only on request."""
        chosen = self.chosen_arms
        mean, bonus, score = self.arm_values(chosen)
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
                    "mean": mean[i].item(),
                    "bonus": bonus[i].item(),
                    "score": score[i].item(),
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


def _pair_context_fn(round: int, history: PairHistory | None, signals: PublicSignals | None) -> ContextFn:
    """The contexts of a round with ``pair_context``: base context, then the pair features."""

    def contexts(table: FeatureTable, teachers: IntArray, students: IntArray) -> FloatArray:
        return extended_contexts(table, teachers, students, round, history, signals)

    return contexts


@dataclass(frozen=True)
class ObserveResult:
    """What `Policy.observe` did with a round's reports."""

    round: int
    used: tuple[DirectedPair, ...]
    missing: tuple[DirectedPair, ...]
    state_digest: str


def rng_for_round(seed: int, round: int) -> np.random.Generator:
    """A reproducible generator for one round (for the ``random`` policy and simulations)."""
    return np.random.default_rng([seed, round])


class Policy(ABC):
    """Score every directed pair, match, and (for learning policies) learn from reported gains."""

    def __init__(self, params: PolicyParams) -> None:
        self.params = params
        # What the arms' contexts are this round (set by `select`; `build_contexts` unless
        # ``pair_context``, where it also depends on the round, the history and the signals).
        self._contexts: ContextFn = build_contexts

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
        self,
        round: int,
        orgs: Sequence[str],
        features: Mapping[str, OrgFeatures],
        rng: np.random.Generator,
        *,
        history: PairHistory | None = None,
        local_value: Mapping[str, float] | None = None,
        signals: PublicSignals | None = None,
    ) -> Decision:
        """Score every directed pair among ``orgs`` (canonicalised: sorted, unique) and match.

        ``features`` must hold an entry for every organization, with this policy's categories.
        ``rng`` is used by the ``random`` policy and by seeded tie-breaking; pass `rng_for_round`
        so that a replay can draw the same numbers. ``history`` (earlier meetings) feeds the
        repeat decay and cap; ``local_value[org]`` is the "no teacher" option: a student is only
        paired with a teacher whose score is strictly above it. With ``pair_context``, the
        ``history`` and the public ``signals`` are part of every arm's context as well. Invalid
        input raises ``ValueError`` and changes nothing.
        """
        if isinstance(round, bool) or not isinstance(round, int) or round < 0:
            raise ValueError(f"round must be a non-negative int, got {round!r}")
        table = FeatureTable.build(orgs, features, self.params.categories)
        self._contexts = build_contexts
        if self.params.pair_context:
            self._contexts = _pair_context_fn(round, history, signals)
        n = table.n
        mat = np.empty((n, n), dtype=np.float64)
        parts = self._fill_scores(table, mat, rng)
        p = self.params
        if history is not None and (p.repeat_penalty > 0.0 or p.repeat_cap is not None):
            adjust_for_repeats(
                mat,
                table.org_ids,
                history,
                round,
                penalty=p.repeat_penalty,
                decay=p.repeat_decay,
                cap=p.repeat_cap,
                window=p.repeat_window,
            )
        floor = None
        if local_value is not None:
            floor = np.array([float(local_value.get(o, -np.inf)) for o in table.org_ids], dtype=np.float64)
        matching = self._match(mat, floor, rng)
        chosen = arm_index(n, matching.teachers, matching.students)
        return Decision(
            round=round,
            policy=self.name,
            params_digest=self.params.digest(),
            state_digest=self.state_digest(),
            org_ids=table.org_ids,
            table=table,
            score_mat=mat,
            arm_parts=parts,
            beta=self._beta(),
            pairs=tuple((table.org_ids[t], table.org_ids[s]) for t, s in matching.pairs()),
            chosen_arms=chosen,
            chosen_contexts=np.ascontiguousarray(self._contexts(table, matching.teachers, matching.students)),
            total_score=matching.total,
            context_fn=self._contexts,
        )

    def _uninformed(self) -> bool:
        """Whether every arm is equally good as far as the policy knows (ties everywhere)."""
        return False

    def _match(self, mat: FloatArray, floor: FloatArray | None, rng: np.random.Generator) -> Matching:
        """Match on ``mat``; with ``tie_break="seeded"`` on organizations in a seeded random order.

        Seeded: the solver sees the rows and columns permuted by `seeded_order`, so ties between
        equally good matchings fall by the round's generator, not by organization id; when the
        policy knows nothing yet (`_uninformed`), all pairs are ties and the matching is a
        seeded random maximum matching.
        """
        p = self.params
        if p.tie_break == "index":
            return match(mat, capacity=p.capacity, threshold=p.threshold, top_k=p.top_k, local_value=floor)
        n = mat.shape[0]
        perm = seeded_order(n, rng)
        view = mat[perm][:, perm]
        lv = None if floor is None else floor[perm]
        threshold = p.threshold
        if self._uninformed():
            ok = eligible_mask(view, threshold)
            if lv is not None:
                ok &= view > lv[None, :]
            view = np.where(ok, 0.0, -np.inf)
            threshold, lv = None, None
        m = match(view, capacity=p.capacity, threshold=threshold, top_k=p.top_k, local_value=lv)
        teachers, students = perm[m.teachers], perm[m.students]
        order = np.lexsort((students, teachers))
        teachers, students = teachers[order], students[order]
        total = 0.0
        for t, s in zip(teachers.tolist(), students.tolist(), strict=True):
            total += mat[t, s].item()
        return Matching(teachers.astype(np.int64), students.astype(np.int64), total)

    def _fill_scores(self, table: FeatureTable, mat: FloatArray, rng: np.random.Generator) -> ArmParts:
        """Write every arm's score into ``mat[teacher, student]`` (``-inf`` on the diagonal).

        The default goes through `_score_block` over the canonical arm blocks, in order.
        """
        mean_is_score = True
        for t_blk, s_blk in iter_arm_blocks(table.n):
            mu, bo, sc = self._score_block(table, t_blk, s_blk, rng)
            mat[t_blk, s_blk] = sc
            mean_is_score = mean_is_score and not bo.any() and np.array_equal(mu, sc)
        np.fill_diagonal(mat, -np.inf)
        return _MeanIsScore(mat) if mean_is_score else ArmParts()

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

    def _uninformed(self) -> bool:
        return self.bandit.n_obs == 0

    def _beta(self) -> float:
        return self.bandit.beta()

    def _score_block(
        self, table: FeatureTable, teachers: IntArray, students: IntArray, rng: np.random.Generator
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        return tuple(self.bandit.scores(self._contexts(table, teachers, students)))  # type: ignore[return-value]

    def _fill_scores(self, table: FeatureTable, mat: FloatArray, rng: np.random.Generator) -> ArmParts:
        """UCB of every arm: the compiled kernel from `KERNEL_MIN_ORGS` organizations, else numpy.

        Both compute the same bits (the kernel follows the reference's order of operations).
        """
        theta, linv, beta = self.bandit.scoring_factors()
        # The compiled kernel builds the base context itself; pair contexts go through numpy.
        use_kernel = table.n >= KERNEL_MIN_ORGS and not self.params.pair_context
        if use_kernel:
            from matchmaker.kernels import ucb_matrix

            ucb_matrix(table, theta, linv, beta, out=mat)
        else:
            for t_blk, s_blk in iter_arm_blocks(table.n):
                sc = score_contexts(self._contexts(table, t_blk, s_blk), theta, linv, beta)
                mat[t_blk, s_blk] = sc.ucb
            np.fill_diagonal(mat, -np.inf)
        return _LinUCBParts(theta, linv, beta, use_kernel, self._contexts)

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
