"""Market mechanisms around the bandit: pair history, its context features, repeat decay and caps,
seeded tie-breaking. All pure functions of plain data (the history of meetings, public signals),
so a replay computes the same bits; all off by default.

* `PairHistory`: who taught whom, when, and the reported reward (``None`` when missing).
* `pair_features`: extra context columns a pair's value can be read from (`PAIR_FEATURE_NAMES`):
  times met, last reward, recency, the teacher's public-test passes per category dotted with the
  student's histogram, the data-size bucket gap and the (log) size of the bundle on offer.
  Appended to the base contexts by `extended_contexts`.
* `adjust_for_repeats`: a repeat of the same directed pair decays in value
  (``score -= penalty * sum_k decay**(round - round_k)`` over earlier meetings ``k``), and a pair
  that already met ``cap`` times within the last ``window`` rounds is not eligible this round.
* `seeded_order`: a permutation drawn from the round's generator; matching on permuted indices
  breaks ties between equally good matchings at random under the committed seed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from matchmaker.context import FeatureTable, build_contexts

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Pair = tuple[str, str]

PAIR_FEATURE_NAMES: tuple[str, ...] = (
    "times_met",
    "last_reward",
    "recency",
    "teacher_passes_x_student_hist",
    "data_size_gap",
    "log_bundle_size",
)


class MechanismError(ValueError):
    """Invalid history or signals for a market mechanism."""


@dataclass(frozen=True)
class Meeting:
    """One realised pair: ``teacher`` taught ``student`` in ``round``; ``reward`` as reported."""

    round: int
    teacher: str
    student: str
    reward: float | None = None


@dataclass(frozen=True)
class PairHistory:
    """The meetings so far, in round order (a fold of the event log, passed in as plain data)."""

    meetings: tuple[Meeting, ...] = ()
    _by_pair: dict[Pair, list[Meeting]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        last = -1
        for m in self.meetings:
            if isinstance(m.round, bool) or not isinstance(m.round, int) or m.round < 0:
                raise MechanismError(f"meeting round must be a non-negative int, got {m.round!r}")
            if m.round < last:
                raise MechanismError("meetings must be in round order")
            if m.teacher == m.student:
                raise MechanismError(f"a self pair cannot have met: {m.teacher!r}")
            if m.reward is not None and not np.isfinite(m.reward):
                raise MechanismError("rewards must be finite or None")
            last = m.round
            self._by_pair.setdefault((m.teacher, m.student), []).append(m)

    @classmethod
    def of(cls, meetings: Iterable[tuple[int, str, str, float | None]]) -> PairHistory:
        return cls(tuple(Meeting(r, t, s, w) for r, t, s, w in meetings))

    def of_pair(self, teacher: str, student: str, before: int) -> list[Meeting]:
        """Meetings of the directed pair in rounds strictly before ``before``."""
        return [m for m in self._by_pair.get((teacher, student), ()) if m.round < before]

    def pairs(self) -> tuple[Pair, ...]:
        return tuple(sorted(self._by_pair))


@dataclass(frozen=True)
class PublicSignals:
    """Public per-organization signals (plain data from the profiles and the chain).

    ``passes[org]``: public-test pass rates per category (the table's categories, in order);
    ``data_size_bucket[org]``: a coarse, public data-size bucket; ``bundle_size[(t, s)]``: the
    number of entries teacher ``t`` can offer student ``s`` (missing: 0).
    """

    passes: Mapping[str, Sequence[float]] = field(default_factory=dict)
    data_size_bucket: Mapping[str, int] = field(default_factory=dict)
    bundle_size: Mapping[Pair, int] = field(default_factory=dict)


def pair_features(
    table: FeatureTable,
    teachers: IntArray,
    students: IntArray,
    round: int,
    history: PairHistory | None = None,
    signals: PublicSignals | None = None,
) -> FloatArray:
    """Extra context columns (`PAIR_FEATURE_NAMES`) of the arms ``(teachers[i], students[i])``.

    ``recency = 1 / (1 + rounds since the last meeting)`` (0 if never met); ``last_reward`` is
    the last *reported* reward (0 if none). Sums run over categories in order, so the bits are
    the same everywhere.
    """
    history = history or PairHistory()
    signals = signals or PublicSignals()
    ids = table.org_ids
    k = len(table.categories)
    m = len(teachers)
    out = np.zeros((m, len(PAIR_FEATURE_NAMES)), dtype=np.float64)
    passes = np.zeros((table.n, k), dtype=np.float64)
    for i, oid in enumerate(ids):
        p = signals.passes.get(oid)
        if p is not None:
            if len(p) != k:
                raise MechanismError(f"passes of {oid!r} must have {k} entries")
            passes[i] = p
    bucket = np.array([float(signals.data_size_bucket.get(oid, 0)) for oid in ids], dtype=np.float64)
    dot = np.zeros(m, dtype=np.float64)
    for j in range(k):
        dot += passes[teachers, j] * table.hist[students, j]
    out[:, 3] = dot
    out[:, 4] = bucket[teachers] - bucket[students]
    for row, (t, s) in enumerate(zip(teachers.tolist(), students.tolist(), strict=True)):
        pair = (ids[t], ids[s])
        met = history.of_pair(*pair, before=round)
        if met:
            out[row, 0] = float(len(met))
            rewarded = [x.reward for x in met if x.reward is not None]
            out[row, 1] = rewarded[-1] if rewarded else 0.0
            out[row, 2] = 1.0 / (1.0 + float(round - met[-1].round))
        size = signals.bundle_size.get(pair, 0)
        if size < 0:
            raise MechanismError("bundle sizes must be >= 0")
        out[row, 5] = float(np.log1p(float(size))) if size else 0.0
    return out


def extended_contexts(
    table: FeatureTable,
    teachers: IntArray,
    students: IntArray,
    round: int,
    history: PairHistory | None = None,
    signals: PublicSignals | None = None,
) -> FloatArray:
    """Base contexts (`build_contexts`) followed by the `pair_features` columns."""
    base = build_contexts(table, teachers, students)
    extra = pair_features(table, teachers, students, round, history, signals)
    return np.asfortranarray(np.concatenate([base, extra], axis=1))


def adjust_for_repeats(
    scores: FloatArray,
    org_ids: Sequence[str],
    history: PairHistory,
    round: int,
    *,
    penalty: float = 0.0,
    decay: float = 0.5,
    cap: int | None = None,
    window: int = 10,
) -> FloatArray:
    """Repeat decay and repeat cap on a score matrix ``[teacher, student]``, in place (returned).

    Only pairs that met before are touched, so the cost is that of the history, not ``n^2``.
    """
    if not (penalty >= 0.0 and 0.0 <= decay <= 1.0 and window >= 1):
        raise MechanismError("need penalty >= 0, 0 <= decay <= 1 and window >= 1")
    if cap is not None and cap < 1:
        raise MechanismError("cap must be >= 1 or None")
    index = {oid: i for i, oid in enumerate(org_ids)}
    for t_id, s_id in history.pairs():
        t, s = index.get(t_id), index.get(s_id)
        if t is None or s is None:
            continue
        met = history.of_pair(t_id, s_id, before=round)
        if not met:
            continue
        if cap is not None and sum(1 for x in met if x.round >= round - window) >= cap:
            scores[t, s] = -np.inf
            continue
        if penalty > 0.0:
            weight = 0.0
            for x in met:
                weight += decay ** float(round - x.round)
            scores[t, s] -= penalty * weight
    return scores


def seeded_order(n: int, rng: np.random.Generator) -> IntArray:
    """A permutation of ``range(n)`` from the round's generator (for seeded tie-breaking)."""
    return np.asarray(rng.permutation(n), dtype=np.int64)
