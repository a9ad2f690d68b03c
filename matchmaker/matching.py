"""One round's matching: who teaches whom.

Constraints: every organization is a student at most once and a teacher at most ``capacity``
times; no self-pairs; a pair is *eligible* when its score is finite and (if a ``threshold`` is
given) strictly above it.

Objective (lexicographic): first the largest number of pairs, then the largest total score.
Maximising cardinality first keeps every organization learning each round even when some
(z-scored) scores are negative; use ``threshold`` to rule out pairs not worth making.

Method: `scipy.optimize.linear_sum_assignment` on a cost matrix whose rows are teacher slots
(each teacher replicated ``capacity`` times, slot-major: row ``j * n + t`` is slot ``j`` of teacher
``t``) and whose columns are students. Eligible entries cost ``-score``; ineligible ones cost a
penalty ``M`` larger than any possible difference in total score, so the solver uses as few of
them as it can; assignments on them are dropped. Since rows >= columns, every column is assigned.

Determinism: the input is in canonical order (organizations sorted by id); the solver is a
deterministic algorithm, so ties between equally good matchings are broken the same way on every
run with the pinned scipy. Pairs are returned sorted by (teacher index, student index).

Large ``n``: the dense solver is roughly cubic (about 0.1 s at n = 1,000 and several seconds at
n = 5,000 on a 2-core machine). ``top_k`` switches to a sparse solver
(`scipy.sparse.csgraph.min_weight_full_bipartite_matching`) over candidate edges only: each
student's ``top_k`` best teachers by score and by score minus the teacher's mean score, and
each teacher's ``top_k`` best students by score minus the student's mean score (the residuals
keep a few popular teachers/needy students from crowding everyone else out; everything tied
with a ``top_k``-th value is kept, so the set does not depend on sort stability), plus one
private "unmatched" slot per student at cost ``M``. The result is optimal *within* the
candidate set; it equals the dense optimum whenever the dense optimum only uses candidate edges
(at n = 1,000 with LinUCB scores, ``top_k = 20`` reached 99.99% of the dense total).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Method = Literal["auto", "dense", "certified"]

#: ``method="auto"`` solves densely up to this many organizations, certified-sparse above.
DENSE_MAX = 400
#: Initial candidates of the certified solver: each student's and each teacher's best ``K0``.
CERTIFIED_K0 = 6
#: Violating edges added per student and iteration of the certified solver.
CERTIFIED_ADD = 8
#: Look-ahead of the certified solver's scan, as a fraction of the score range.
CERTIFIED_LOOKAHEAD = 0.01


@dataclass(frozen=True, eq=False)
class Matching:
    """Chosen pairs (indices into the round's canonical organization order) and their total score."""

    teachers: IntArray
    students: IntArray
    total: float

    def __len__(self) -> int:
        return len(self.teachers)

    def pairs(self) -> list[tuple[int, int]]:
        return [(int(t), int(s)) for t, s in zip(self.teachers, self.students, strict=True)]


def eligible_mask(scores: FloatArray, threshold: float | None) -> NDArray[np.bool_]:
    """Finite, off-diagonal and (with a threshold) strictly above it."""
    ok = np.isfinite(scores)
    np.fill_diagonal(ok, False)
    if threshold is not None:
        ok &= scores > threshold
    return ok


def _penalty(scores: FloatArray, ok: NDArray[np.bool_], n: int) -> float:
    """A cost for "not an eligible pair" that outweighs any difference in total score."""
    vals = scores[ok]
    hi, lo = float(vals.max()), float(vals.min())
    spread = (hi - lo) + max(abs(hi), abs(lo)) + 1.0
    return spread * (n + 1)


def _canonical(teachers: IntArray, students: IntArray, scores: FloatArray) -> Matching:
    order = np.lexsort((students, teachers))
    t, s = teachers[order], students[order]
    total = 0.0
    for ti, si in zip(t.tolist(), s.tolist(), strict=True):
        total += scores[ti, si].item()
    return Matching(t.astype(np.int64), s.astype(np.int64), total)


def match(
    scores: FloatArray,
    *,
    capacity: int = 1,
    threshold: float | None = None,
    top_k: int | None = None,
    local_value: FloatArray | None = None,
    method: Method = "auto",
) -> Matching:
    """Best matching for an ``(n, n)`` matrix ``scores[teacher, student]``; see the module docstring.

    Non-finite entries (e.g. ``-inf``) and the diagonal are never chosen. ``local_value[s]`` (the
    "no teacher" option, off by default) is what student ``s`` gets by training alone: a pair is
    then eligible only if its score is strictly above it, so a student no teacher beats stays
    unpaired. ``method``: ``"dense"`` (`linear_sum_assignment`), ``"certified"`` (sparse, exact,
    see `match_certified`) or ``"auto"`` (dense up to `DENSE_MAX` organizations). ``top_k``
    selects the older, non-certified candidate heuristic instead.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"scores must be a square matrix, got shape {s.shape}")
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise ValueError(f"capacity must be a positive int, got {capacity!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")
    if method not in ("auto", "dense", "certified"):
        raise ValueError(f"unknown matching method {method!r}")
    n = s.shape[0]
    floor = _floor(n, threshold, local_value)
    empty = np.zeros(0, dtype=np.int64)
    if n < 2:
        return Matching(empty, empty, 0.0)
    if top_k is None and (method == "certified" or (method == "auto" and n > DENSE_MAX)):
        return match_certified(s, capacity=capacity, floor=floor)
    ok = eligible_mask(s, threshold)
    if local_value is not None:
        ok &= s > floor[None, :]
    if not ok.any():
        return Matching(empty, empty, 0.0)
    big = _penalty(s, ok, n)
    if top_k is not None and top_k < n - 1:
        return _match_sparse(s, ok, capacity, top_k, big)
    cost = np.where(ok, -s, big)
    rows, cols = linear_sum_assignment(cost if capacity == 1 else np.tile(cost, (capacity, 1)))
    teachers = (rows % n).astype(np.int64)
    students = cols.astype(np.int64)
    keep = ok[teachers, students]
    return _canonical(teachers[keep], students[keep], s)


def _exact_means(values: FloatArray, ok: NDArray[np.bool_]) -> tuple[FloatArray, FloatArray]:
    """Row and column means of ``values`` over ``ok`` entries, with reproducible bits.

    Floating-point sums depend on the summation order, which numpy does not promise; so the
    values are scaled by a power of two (exact) to int64 fixed point and summed as integers
    (exact in any order). ``|value| * scale * n`` stays below ``2**62``.
    """
    n = values.shape[0]
    zeroed = np.where(ok, values, 0.0)
    vmax = float(np.abs(zeroed).max())
    scale = 2.0 ** math.floor(math.log2(2.0**61 / (vmax * n))) if vmax > 0 else 1.0
    zeroed *= scale
    fixed = np.rint(zeroed, out=zeroed).astype(np.int64)
    rows = np.maximum(ok.sum(axis=1), 1)
    cols = np.maximum(ok.sum(axis=0), 1)
    row_mean = fixed.sum(axis=1).astype(np.float64) / scale / rows
    col_mean = fixed.sum(axis=0).astype(np.float64) / scale / cols
    return row_mean, col_mean


def _top_k_mask(values: FloatArray, top_k: int, axis: int) -> NDArray[np.bool_]:
    """Entries at least as large as the ``top_k``-th largest of their column (axis 0) or row (axis 1).

    ``np.partition``'s k-th *value* does not depend on the algorithm, so neither does the mask.
    """
    n = values.shape[axis]
    kth = np.partition(values, n - top_k, axis=axis).take(n - top_k, axis=axis)
    mask: NDArray[np.bool_] = values >= (kth[None, :] if axis == 0 else kth[:, None])
    return mask


def _match_sparse(s: FloatArray, ok: NDArray[np.bool_], capacity: int, top_k: int, big: float) -> Matching:
    n = s.shape[0]
    masked = np.where(ok, s, -np.inf)
    # Candidates. Raw top-k alone fails when scores are dominated by additive parts (a popular
    # teacher is everyone's top choice): so also rank by the interaction residual, i.e. the score
    # minus the teacher's mean (within a student's column) or minus the student's mean (within
    # a teacher's row), which is what decides a matching.
    teacher_mean, student_mean = _exact_means(s, ok)
    cand = _top_k_mask(masked, top_k, axis=0)
    cand |= _top_k_mask(masked - teacher_mean[:, None], top_k, axis=0)
    cand |= _top_k_mask(masked - student_mean[None, :], top_k, axis=1)
    cand &= ok
    t_idx, s_idx = np.nonzero(cand)
    # costs in [1, spread + 1]: positive, and the sum over any matching stays below ``big``
    w = (float(s[t_idx, s_idx].max()) + 1.0) - s[t_idx, s_idx]
    rows = np.concatenate([(j * n + t_idx) for j in range(capacity)] + [capacity * n + np.arange(n)])
    cols = np.concatenate([s_idx] * capacity + [np.arange(n)])
    vals = np.concatenate([w] * capacity + [np.full(n, big)])
    graph = csr_matrix((vals, (rows, cols)), shape=(capacity * n + n, n))
    # transposed so that rows are students (the smaller side, always fully matched thanks to the
    # private unmatched slots)
    student_rows, slot_cols = min_weight_full_bipartite_matching(graph.T.tocsr())
    students = np.asarray(student_rows, dtype=np.int64)
    slots = np.asarray(slot_cols, dtype=np.int64)
    real = slots < capacity * n
    return _canonical(slots[real] % n, students[real], s)


def _floor(n: int, threshold: float | None, local_value: FloatArray | None) -> FloatArray:
    """Per-student eligibility floor: a pair must score strictly above ``floor[student]``."""
    floor = np.full(n, -np.inf if threshold is None else float(threshold), dtype=np.float64)
    if local_value is not None:
        lv = np.asarray(local_value, dtype=np.float64)
        if lv.shape != (n,) or np.isnan(lv).any():
            raise ValueError(f"local_value must be a ({n},) array without NaN")
        np.maximum(floor, lv, out=floor)
    return floor


def match_certified(
    scores: FloatArray, *, capacity: int = 1, floor: FloatArray | None = None, k0: int = CERTIFIED_K0
) -> Matching:
    """Exact maximum-cardinality, maximum-score matching from a sparse candidate set, with a proof.

    Problem. Rows are students, columns are teacher slots (``capacity`` per teacher) plus one
    private dummy column per student ("unpaired"). A real edge ``(s, t)`` costs
    ``c = W - score[t, s]`` with ``W = 1 + max eligible score`` (so ``1 <= c <= C``), a dummy costs
    ``big = (C + 1) (n + 1)``: one more real pair always outweighs any difference in score, so
    the minimum-cost assignment is the maximum-cardinality, then maximum-total matching.

    Method. Start from each student's and each teacher's ``k0`` best eligible partners; solve
    that sparse problem by shortest augmenting paths (`kernels.assign`), which also yields dual
    potentials ``u`` (students) and ``v`` (slots, ``v <= 0``, ``0`` on free slots) with reduced
    costs ``c - u - v >= -eps`` on candidate edges and ``|c - u - v| <= eps`` on chosen ones.
    Then scan *all* eligible pairs: a non-candidate pair whose reduced cost (against the best
    slot of its teacher) is below ``margin`` is added, the problem solved again, until none is.

    Proof of exactness. For any assignment ``x'`` and the chosen ``x`` the potentials telescope:
    ``cost(x') - cost(x) = sum_{x'} rc - sum_x rc - sum v`` over the slots ``x'`` leaves free (the
    slots ``x`` leaves free have ``v = 0``), and ``-v >= 0``, so ``cost(x') - cost(x) >= sum_{x'} rc
    - sum_x rc``. If ``x'`` uses
    a non-candidate edge, its term is at least ``margin - delta`` and every other term at least
    ``-(eps + delta)``, where ``delta = 2**-50 (W + max|score| + max|u| + max|v| + big)`` bounds
    the rounding of one computed reduced cost and of the cost itself. With
    ``margin = 2 (n + 1) (eps + delta) + delta`` the difference is > 0: every matching that uses a
    pair outside the final candidate set is strictly worse, in exact arithmetic, than the one
    returned, so the full problem's optima are the candidate problem's optima.

    Memory: besides ``scores``, one ``n x n`` byte mask of the candidates and ``O(n k)`` edges.
    """
    from matchmaker.kernels import kernels

    kern = kernels()
    s = np.ascontiguousarray(np.asarray(scores, dtype=np.float64))
    n = s.shape[0]
    empty = np.zeros(0, dtype=np.int64)
    thr = np.full(n, -np.inf) if floor is None else np.ascontiguousarray(floor, dtype=np.float64)
    lo = np.empty(n)
    hi = np.empty(n)
    row_cnt = np.empty(n, dtype=np.int64)
    row_sum = np.empty(n)
    kern.eligible_range(s, thr, lo, hi, row_cnt, row_sum)
    if n < 2 or int(row_cnt.sum()) == 0:
        return Matching(empty, empty, 0.0)
    col_cnt = np.empty(n, dtype=np.int64)
    col_sum = np.empty(n)
    kern.column_sums(s, thr, col_cnt, col_sum)
    s_min, s_max = float(lo[row_cnt > 0].min()), float(hi[row_cnt > 0].max())
    w_top = s_max + 1.0
    c_max = w_top - s_min
    big = (c_max + 1.0) * (n + 1)
    # Candidates: the best partners by raw score and by the interaction residual (score minus the
    # teacher's, resp. the student's, mean: additive parts do not change a perfect matching's
    # choice but would make everyone's top-k the same few teachers), plus the cyclic pairs
    # ``t = s + 1 mod n`` where eligible (a perfect matching, so the first solve rarely needs
    # the dummies).
    k = max(1, min(k0, n - 1))
    row_mean = row_sum / np.maximum(row_cnt, 1)
    col_mean = col_sum / np.maximum(col_cnt, 1)
    zeros = np.zeros(n)
    cand_t = np.zeros((n, n), dtype=np.bool_)  # [student, teacher]
    idx = np.empty((n, k), dtype=np.int64)
    for off in (zeros, row_mean):
        kern.column_top_k(s, thr, off, k, idx)
        ss, cc = np.nonzero(idx >= 0)
        cand_t[ss, idx[ss, cc]] = True
    for off in (zeros, col_mean):
        kern.row_top_k(s, thr, off, k, idx)
        tt, cc = np.nonzero(idx >= 0)
        cand_t[idx[tt, cc], tt] = True
    st = np.arange(n)
    cyc = (st + 1) % n
    ring = s[cyc, st]
    ok_ring = np.isfinite(ring) & (ring > thr)
    cand_t[st[ok_ring], cyc[ok_ring]] = True
    del idx
    # Warm start: slot 0 of teacher t priced at -(mean_t - min mean) <= 0, the additive part of
    # its scores, which the first augmentations would otherwise have to discover one by one.
    zero_init = np.zeros(capacity * n + n)
    v_init = zero_init.copy()
    used = row_cnt > 0
    v_init[:n][used] = -(row_mean[used] - float(row_mean[used].min()))
    limit = 4 * CERTIFIED_ADD
    # Pairs within ``lookahead`` of violating are added too (more candidates never hurt
    # exactness, and they save rounds of solve-and-scan); the stopping test uses ``margin`` only.
    lookahead = CERTIFIED_LOOKAHEAD * (s_max - s_min)
    n_true = np.empty(n, dtype=np.int64)
    n_rec = np.empty(n, dtype=np.int64)
    out_s = np.empty((n, limit), dtype=np.int64)
    out_rc = np.empty((n, limit), dtype=np.float64)
    first_round = True
    while True:
        indptr = np.empty(n + 1, dtype=np.int64)
        indices, costs = kern.build_csr(cand_t, s, w_top, big, capacity, indptr)
        col_of_row, u, v = kern.assign(n, capacity * n + n, indptr, indices, costs, v_init)
        free = np.ones(capacity * n + n, dtype=np.bool_)
        free[col_of_row] = False
        if (v[free] != 0.0).any():  # the warm start left a free slot priced: solve from zero
            col_of_row, u, v = kern.assign(n, capacity * n + n, indptr, indices, costs, zero_init)
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
        rc = (costs - u[rows]) - v[indices]
        chosen = indices == col_of_row[rows]
        eps = max(0.0, -float(rc.min()), float(np.abs(rc[chosen]).max()))
        delta = 2.0**-50 * (
            abs(w_top) + max(abs(s_min), abs(s_max)) + float(np.abs(u).max()) + float(np.abs(v).max()) + big
        )
        margin = 2.0 * (n + 1) * (eps + delta) + delta
        vmax = v[: capacity * n].reshape(capacity, n).max(axis=0)
        kern.violations(
            s, thr, cand_t, w_top, u, vmax, margin, lookahead, n_true, limit, n_rec, out_s, out_rc
        )
        if not n_true.any():
            break  # every non-candidate pair has reduced cost >= margin: the proof applies
        # add the most violating few per student (the scan keeps each teacher row's ``limit``
        # smallest, near-violations included; whatever it could not keep, the next scan finds)
        valid = np.arange(limit)[None, :] < n_rec[:, None]
        vt = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None], valid.shape)[valid]
        vs, vr = out_s[valid], out_rc[valid]
        if first_round:
            # after the first solve the potentials say what matters: each student's and each
            # teacher's ``k`` best partners by reduced cost join the candidates
            first_round = False
            idx = np.empty((n, k), dtype=np.int64)
            kern.column_top_k(s, thr, -vmax, k, idx)
            ss, cc = np.nonzero(idx >= 0)
            cand_t[ss, idx[ss, cc]] = True
            kern.row_top_k(s, thr, -u, k, idx)
            tt, cc = np.nonzero(idx >= 0)
            cand_t[idx[tt, cc], tt] = True
        order = np.lexsort((vt, vr, vs))
        vt, vs = vt[order], vs[order]
        first = np.searchsorted(vs, vs, side="left")
        keep = (np.arange(len(vs)) - first) < CERTIFIED_ADD
        cand_t[vs[keep], vt[keep]] = True
    real = col_of_row < capacity * n
    students = np.nonzero(real)[0].astype(np.int64)
    teachers = (col_of_row[real] % n).astype(np.int64)
    return _canonical(teachers, students, s)
