"""Compiled kernels for a decision round at large ``n``: contexts + LinUCB scores, and matching.

Bit-exactness contract. Every kernel here performs, for each directed pair, exactly the IEEE-754
operations of the reference implementation (`matchmaker.context.build_contexts` followed by
`matchmaker.linucb.LinUCB.scores`), in the same order:

* contexts: the same element-wise ``+ - * abs max``; ``dot`` and ``tv`` accumulated over
  categories ``0..K-1`` starting from ``0.0``;
* ``mean = x_0 th_0 + x_1 th_1 + ...`` left to right; ``z_i = x_0 L_i0 + x_1 L_i1 + ... + x_i L_ii``
  left to right; ``q = 0 + z_0^2 + z_1^2 + ...``; ``bonus = sqrt(q)``; ``ucb = mean + beta bonus``.

The kernels are compiled by numba *without* ``fastmath`` (no reassociation, no FMA contraction:
numba emits no ``contract`` flag), and vectorised only *across pairs*: the innermost loops run
over a chunk of pairs, the reduction over one pair's features stays a sequential chain. Threads
split the work by teacher rows (or student columns); no value depends on which thread computed
it, so the results are the same for any thread count. ``tests/matchmaker/test_kernels.py``
checks the bits against the reference on random and recorded inputs.

numba is imported on first use, so that importing the matchmaker stays cheap.
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from matchmaker.context import FeatureTable

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

_lock = threading.Lock()
_compiled: ModuleType | None = None


def kernels() -> ModuleType:
    """The compiled kernels (numba compiles them, or loads them from its cache, on first use)."""
    global _compiled
    with _lock:
        if _compiled is None:
            import matchmaker._kernels_numba as impl

            _compiled = impl
        return _compiled


def _table_args(table: FeatureTable) -> tuple[Any, ...]:
    return (
        np.ascontiguousarray(table.hist_by_category, dtype=np.float64),
        np.ascontiguousarray(table.pass1, dtype=np.float64),
        np.ascontiguousarray(table.pass1_delta, dtype=np.float64),
        np.ascontiguousarray(table.reputation, dtype=np.float64),
        np.ascontiguousarray(table.size_bucket, dtype=np.float64),
        np.ascontiguousarray(table.student_capacity, dtype=np.float64),
        np.ascontiguousarray(table.family_code, dtype=np.int64),
    )


def _factors(theta: FloatArray, linv: FloatArray, dim: int) -> tuple[FloatArray, FloatArray]:
    th = np.ascontiguousarray(theta, dtype=np.float64)
    li = np.ascontiguousarray(linv, dtype=np.float64)
    if th.shape != (dim,) or li.shape != (dim, dim):
        raise ValueError(f"theta/L^-1 of shapes {th.shape}/{li.shape} do not fit contexts of dimension {dim}")
    return th, li


def ucb_matrix(
    table: FeatureTable,
    theta: FloatArray,
    linv: FloatArray,
    beta: float,
    *,
    out: FloatArray | None = None,
    teacher_block: int = 1024,
) -> FloatArray:
    """``ucb[teacher, student]`` of all directed pairs (``-inf`` on the diagonal), ``(n, n)``.

    Written into ``out`` one block of ``teacher_block`` teacher rows at a time: no other
    ``n x n`` array is created. Bit-identical to ``LinUCB.scores(build_contexts(...)).ucb``.
    """
    n = table.n
    th, li = _factors(theta, linv, table.dim)
    if out is None:
        out = np.empty((n, n), dtype=np.float64)
    if out.shape != (n, n) or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float64 ({n}, {n}) array")
    args = _table_args(table)
    impl = kernels()
    for t0 in range(0, n, teacher_block):
        t1 = min(n, t0 + teacher_block)
        impl.score_rows(*args, th, li, float(beta), t0, out[t0:t1])
    return out


def pair_scores(
    table: FeatureTable,
    teachers: IntArray,
    students: IntArray,
    theta: FloatArray,
    linv: FloatArray,
    beta: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(mean, bonus, ucb)`` of the pairs ``(teachers[i], students[i])``, bit-identical to the reference."""
    t = np.ascontiguousarray(teachers, dtype=np.int64)
    s = np.ascontiguousarray(students, dtype=np.int64)
    if t.shape != s.shape or t.ndim != 1:
        raise ValueError("teachers and students must be 1-d arrays of the same length")
    if len(t) and (min(int(t.min()), int(s.min())) < 0 or max(int(t.max()), int(s.max())) >= table.n):
        raise ValueError("pair indices out of range")
    th, li = _factors(theta, linv, table.dim)
    out = np.empty((3, len(t)), dtype=np.float64)
    if len(t):
        kernels().score_pairs(*_table_args(table), th, li, float(beta), t, s, out)
    return out[0], out[1], out[2]
