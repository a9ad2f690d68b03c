"""Matching: constraints, optimality against brute force, the sparse top-K fallback."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from matchmaker.matching import Matching, _exact_means, match


def _check_constraints(m: Matching, scores: np.ndarray, capacity: int, threshold: float | None) -> None:
    students = m.students.tolist()
    assert len(set(students)) == len(students)
    assert max(Counter(m.teachers.tolist()).values(), default=0) <= capacity
    assert not np.any(m.teachers == m.students)
    chosen = scores[m.teachers, m.students]
    assert np.isfinite(chosen).all()
    if threshold is not None:
        assert (chosen > threshold).all()
    assert m.pairs() == sorted(m.pairs())


def _brute_force(scores: np.ndarray, capacity: int, threshold: float | None) -> tuple[int, float]:
    n = scores.shape[0]
    best = (0, 0.0)
    options = [
        [None]
        + [
            t
            for t in range(n)
            if t != s and np.isfinite(scores[t, s]) and (threshold is None or scores[t, s] > threshold)
        ]
        for s in range(n)
    ]
    for choice in itertools.product(*options):
        used = Counter(t for t in choice if t is not None)
        if used and max(used.values()) > capacity:
            continue
        card = sum(t is not None for t in choice)
        total = sum(scores[t, s] for s, t in enumerate(choice) if t is not None)
        if (card, total) > (best[0], best[1] + 1e-12):
            best = (card, float(total))
    return best


@pytest.mark.parametrize("n", [2, 3, 4, 5])
@pytest.mark.parametrize("capacity", [1, 2])
@pytest.mark.parametrize("threshold", [None, 0.3])
def test_optimal_against_brute_force(n: int, capacity: int, threshold: float | None) -> None:
    rng = np.random.default_rng(n * 10 + capacity)
    for _ in range(4):
        scores = rng.normal(size=(n, n))
        scores[rng.random((n, n)) < 0.15] = -np.inf
        m = match(scores, capacity=capacity, threshold=threshold)
        _check_constraints(m, scores, capacity, threshold)
        card, total = _brute_force(scores, capacity, threshold)
        assert len(m) == card
        assert m.total == pytest.approx(total, abs=1e-9)


def test_everyone_is_matched_without_threshold() -> None:
    scores = np.random.default_rng(0).normal(size=(40, 40)) - 5.0  # all negative
    m = match(scores)
    assert len(m) == 40
    _check_constraints(m, scores, 1, None)


def test_capacity_lets_a_star_teacher_teach_several() -> None:
    scores = np.zeros((4, 4))
    scores[0, :] = 10.0
    m = match(scores, capacity=3)
    assert Counter(m.teachers.tolist())[0] == 3
    _check_constraints(m, scores, 3, None)


def test_degenerate_inputs() -> None:
    assert len(match(np.zeros((1, 1)))) == 0
    assert len(match(np.full((3, 3), -np.inf))) == 0
    assert len(match(np.zeros((3, 3)), threshold=1.0)) == 0
    with pytest.raises(ValueError, match="square"):
        match(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="capacity"):
        match(np.zeros((2, 2)), capacity=0)


def test_deterministic_with_ties() -> None:
    scores = np.ones((30, 30))
    first = match(scores).pairs()
    assert all(match(scores.copy()).pairs() == first for _ in range(3))


@pytest.mark.parametrize("capacity", [1, 2])
def test_sparse_top_k(capacity: int) -> None:
    rng = np.random.default_rng(capacity)
    scores = rng.normal(size=(60, 60))
    dense = match(scores, capacity=capacity)
    full_k = match(scores, capacity=capacity, top_k=59)
    assert full_k.pairs() == dense.pairs()
    sparse = match(scores, capacity=capacity, top_k=8)
    _check_constraints(sparse, scores, capacity, None)
    assert len(sparse) == 60
    assert sparse.total <= dense.total + 1e-9
    assert sparse.total > 0.97 * dense.total
    thr = match(scores, capacity=capacity, top_k=8, threshold=1.0)
    _check_constraints(thr, scores, capacity, 1.0)


def test_exact_means_match_numpy() -> None:
    rng = np.random.default_rng(4)
    values = rng.normal(size=(50, 50)) * 7.0
    ok = rng.random((50, 50)) < 0.8
    rows, cols = _exact_means(values, ok)
    masked = np.where(ok, values, np.nan)
    np.testing.assert_allclose(rows, np.nanmean(masked, axis=1), rtol=1e-12)
    np.testing.assert_allclose(cols, np.nanmean(masked, axis=0), rtol=1e-12)
    # the same numbers in another memory layout give the same bits
    rows_f, cols_f = _exact_means(np.asfortranarray(values), np.asfortranarray(ok))
    assert rows.tobytes() == rows_f.tobytes()
    assert cols.tobytes() == cols_f.tobytes()
