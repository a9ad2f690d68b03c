"""Directed-pair contexts ``x(teacher, student)`` for the bandit, built from two `OrgFeatures`.

A linear model over a plain concatenation of two profiles cannot represent pair interactions
("this teacher is strong exactly where this student is weak"), so the context is built from
element-wise products and differences of the two profiles. Feature order (``K`` categories,
``d = K + 12``; `context_feature_names` gives the names):

====================  =====================================================================
index                 feature
====================  =====================================================================
0                     bias, 1
1 .. K                complementarity per category: ``h_t[k] * (1 - h_s[k])``
K + 1                 total variation distance ``0.5 * sum_k |h_t[k] - h_s[k]|``
K + 2                 teacher Pass@1 ``p_t``
K + 3                 Pass@1 difference ``p_t - p_s``
K + 4                 teacher strength x complementarity ``p_t * (1 - sum_k h_t[k] h_s[k])``
K + 5                 teacher's recent Pass@1 change
K + 6                 teacher reputation
K + 7                 log size ratio ``(b_t - b_s) * ln 2`` (``b`` = size bucket, ``~1e8 * 2**b`` params)
K + 8                 its absolute value (a size-mismatch cost is symmetric; a linear model needs it)
K + 9                 same model family (1.0 / 0.0)
K + 10                student adapter capacity ``r_s / (r_s + 16)`` (``r`` = LoRA rank)
K + 11                positive Pass@1 gap ``max(0, p_t - p_s)`` (only a better teacher helps)
====================  =====================================================================

The dot product ``sum_k h_t[k] h_s[k]`` is expressed through ``sum_k comp_k = 1 - dot``. Only
``+ - * /``, ``abs`` and comparisons are used (no ``log``/``exp`` on arrays, whose SIMD
implementations may differ in the last bit between CPUs), each sum is accumulated in index order,
so a context is bit-identical on every IEEE-754 machine with the same numpy.

Arms are enumerated in a canonical order: organizations sorted by id, then teacher-major,
students ascending, self-pairs skipped (`all_arms`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from market.categories import check_categories
from matchmaker.features import OrgFeatures

CONTEXT_VERSION = "pair-context.v1"
LN2 = 0.6931471805599453
_RANK_HALF = 16.0
_N_EXTRA = 12

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def context_dim(n_categories: int) -> int:
    """Context dimension for ``n_categories`` categories."""
    return n_categories + _N_EXTRA


def context_feature_names(categories: Sequence[str]) -> tuple[str, ...]:
    """Names of the context features, in order."""
    return (
        "bias",
        *(f"comp[{c}]" for c in categories),
        "hist_tv_distance",
        "teacher_pass1",
        "pass1_diff",
        "teacher_pass1_x_complementarity",
        "teacher_pass1_delta",
        "teacher_reputation",
        "log_size_ratio",
        "abs_log_size_ratio",
        "same_family",
        "student_capacity",
        "pass1_gap_positive",
    )


@dataclass(frozen=True, eq=False)
class FeatureTable:
    """Columnar view of the features of ``org_ids`` (sorted, unique) for vectorised contexts."""

    org_ids: tuple[str, ...]
    categories: tuple[str, ...]
    hist: FloatArray  # (N, K)
    hist_by_category: FloatArray  # (K, N), contiguous per category
    pass1: FloatArray
    pass1_delta: FloatArray
    reputation: FloatArray
    credits: FloatArray
    size_bucket: FloatArray
    student_capacity: FloatArray
    family_code: IntArray

    @property
    def n(self) -> int:
        return len(self.org_ids)

    @property
    def dim(self) -> int:
        return context_dim(len(self.categories))

    @classmethod
    def build(
        cls, org_ids: Sequence[str], features: Mapping[str, OrgFeatures], categories: Sequence[str]
    ) -> FeatureTable:
        """Canonicalise ``org_ids`` (sorted, deduplicated) and gather their features.

        Raises ``ValueError`` for an organization without features or with other categories.
        """
        cats = check_categories(categories)
        ids = tuple(sorted(set(org_ids)))
        for oid in ids:
            if not isinstance(oid, str) or not oid:
                raise ValueError(f"organization ids must be non-empty strings, got {oid!r}")
        rows: list[OrgFeatures] = []
        for oid in ids:
            f = features.get(oid)
            if f is None:
                raise ValueError(f"no features for organization {oid!r}")
            if f.categories != cats:
                raise ValueError(f"organization {oid!r} uses categories {f.categories}, expected {cats}")
            rows.append(f)
        families = sorted({f.family for f in rows})
        code = {fam: i for i, fam in enumerate(families)}
        n, k = len(rows), len(cats)
        hist = np.zeros((n, k), dtype=np.float64)
        for i, f in enumerate(rows):
            hist[i] = f.category_hist
        ranks = np.array([f.lora_rank for f in rows], dtype=np.float64)
        return cls(
            org_ids=ids,
            categories=cats,
            hist=hist,
            hist_by_category=np.ascontiguousarray(hist.T),
            pass1=np.array([f.pass1 for f in rows], dtype=np.float64),
            pass1_delta=np.array([f.pass1_delta for f in rows], dtype=np.float64),
            reputation=np.array([f.reputation for f in rows], dtype=np.float64),
            credits=np.array([f.credits for f in rows], dtype=np.float64),
            size_bucket=np.array([f.size_bucket for f in rows], dtype=np.float64),
            student_capacity=ranks / (ranks + _RANK_HALF),
            family_code=np.array([code[f.family] for f in rows], dtype=np.int64),
        )


def all_arms(n: int) -> tuple[IntArray, IntArray]:
    """Teacher and student indices of all ``n * (n - 1)`` directed pairs, in canonical order."""
    return arm_block(n, 0, n)


def arm_block(n: int, t_start: int, t_stop: int) -> tuple[IntArray, IntArray]:
    """The canonical arms whose teacher index lies in ``[t_start, t_stop)``."""
    teachers = np.arange(t_start, t_stop, dtype=np.int64)
    t = np.repeat(teachers, n)
    s = np.tile(np.arange(n, dtype=np.int64), len(teachers))
    keep = t != s
    return t[keep], s[keep]


def arm_index(n: int, teacher: IntArray, student: IntArray) -> IntArray:
    """Position of arm ``(teacher, student)`` in the canonical enumeration `all_arms`."""
    return teacher * (n - 1) + student - (student > teacher).astype(np.int64)


def iter_arm_blocks(n: int, max_arms: int = 65536) -> Iterator[tuple[IntArray, IntArray]]:
    """`all_arms` in consecutive blocks of whole teachers, about ``max_arms`` arms each."""
    if n < 2:
        return
    per_block = max(1, max_arms // max(1, n - 1))
    for start in range(0, n, per_block):
        yield arm_block(n, start, min(n, start + per_block))


def build_contexts(table: FeatureTable, teachers: IntArray, students: IntArray) -> FloatArray:
    """Contexts of the arms ``(teachers[i], students[i])``: a float64 array ``(m, d)`` in Fortran order.

    Fortran (column-major) order keeps each feature contiguous, which is what `LinUCB.scores`
    iterates over.
    """
    m, k = len(teachers), len(table.categories)
    x = np.empty((m, context_dim(k)), dtype=np.float64, order="F")
    x[:, 0] = 1.0
    hist_t = table.hist_by_category
    dot = np.zeros(m, dtype=np.float64)
    tv = np.zeros(m, dtype=np.float64)
    tmp = np.empty(m, dtype=np.float64)
    for j in range(k):
        a = hist_t[j].take(teachers)
        b = hist_t[j].take(students)
        np.subtract(1.0, b, out=tmp)
        np.multiply(a, tmp, out=x[:, 1 + j])
        np.multiply(a, b, out=tmp)
        dot += tmp
        np.subtract(a, b, out=tmp)
        np.abs(tmp, out=tmp)
        tv += tmp
    np.multiply(tv, 0.5, out=x[:, k + 1])
    pt = table.pass1.take(teachers)
    x[:, k + 2] = pt
    np.subtract(pt, table.pass1.take(students), out=x[:, k + 3])
    np.subtract(1.0, dot, out=tmp)
    np.multiply(pt, tmp, out=x[:, k + 4])
    x[:, k + 5] = table.pass1_delta.take(teachers)
    x[:, k + 6] = table.reputation.take(teachers)
    np.subtract(table.size_bucket.take(teachers), table.size_bucket.take(students), out=tmp)
    np.multiply(tmp, LN2, out=x[:, k + 7])
    np.abs(x[:, k + 7], out=x[:, k + 8])
    x[:, k + 9] = table.family_code.take(teachers) == table.family_code.take(students)
    x[:, k + 10] = table.student_capacity.take(students)
    np.maximum(x[:, k + 3], 0.0, out=x[:, k + 11])
    return x


def pair_context(teacher: OrgFeatures, student: OrgFeatures) -> FloatArray:
    """Context of a single directed pair (convenience for tests and audits)."""
    table = FeatureTable.build(["t", "u"], {"t": teacher, "u": student}, teacher.categories)
    return np.ascontiguousarray(build_contexts(table, np.array([0]), np.array([1]))[0])
