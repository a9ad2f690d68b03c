"""Matching: constraints, optimality against brute force, the sparse top-K fallback."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import numpy as np
import pytest

from matchmaker.matching import DENSE_MAX, Matching, Method, _exact_means, match, match_certified


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
@pytest.mark.parametrize("method", ["dense", "certified"])
def test_optimal_against_brute_force(n: int, capacity: int, threshold: float | None, method: Method) -> None:
    rng = np.random.default_rng(n * 10 + capacity)
    for _ in range(4):
        scores = rng.normal(size=(n, n))
        scores[rng.random((n, n)) < 0.15] = -np.inf
        m = match(scores, capacity=capacity, threshold=threshold, method=method)
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


def _structured(n: int, seed: int, interaction: float = 0.3) -> np.ndarray:
    """Scores dominated by additive teacher/student parts, as UCB scores are."""
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, 1)) * 2.0 + rng.normal(size=(1, n)) + interaction * rng.normal(size=(n, n))
    np.fill_diagonal(s, -np.inf)
    return s


@pytest.mark.parametrize(
    ("n", "capacity", "threshold", "seed"),
    [
        (30, 1, None, 0),
        (120, 1, None, 1),
        (250, 2, None, 2),
        (200, 1, 0.5, 3),
        (180, 3, -1.0, 4),
        (301, 1, None, 5),
    ],
)
def test_certified_equals_dense(n: int, capacity: int, threshold: float | None, seed: int) -> None:
    """The pruned solver returns the full (dense) optimum: same pairs, same total."""
    for scores in (_structured(n, seed), np.random.default_rng(seed).normal(size=(n, n))):
        dense = match(scores, capacity=capacity, threshold=threshold, method="dense")
        cert = match(scores, capacity=capacity, threshold=threshold, method="certified")
        _check_constraints(cert, scores, capacity, threshold)
        assert cert.pairs() == dense.pairs()
        assert cert.total == dense.total


def test_certified_proof_repairs_a_poor_candidate_set() -> None:
    """With one candidate per student the first solve is far off; the scan must add what is missing."""
    scores = _structured(150, 7, interaction=1.0)
    dense = match(scores, method="dense")
    cert = match_certified(scores, k0=1)
    assert cert.pairs() == dense.pairs()


def test_auto_switches_to_the_certified_solver_and_matches_every_student() -> None:
    n = DENSE_MAX + 50
    scores = _structured(n, 8) - 10.0  # all scores negative: still everyone is matched
    m = match(scores)
    assert len(m) == n
    _check_constraints(m, scores, 1, None)
    assert m.pairs() == match(scores, method="dense").pairs()


@pytest.mark.parametrize("method", ["dense", "certified"])
def test_threshold_is_strictly_above(method: Method) -> None:
    scores = np.array([[-np.inf, 1.0, 2.0], [2.0, -np.inf, 1.0], [1.0, 2.0, -np.inf]])
    at = match(scores, threshold=2.0, method=method)
    assert len(at) == 0  # equal to the threshold is not above it
    below = match(scores, threshold=np.nextafter(2.0, 0.0), method=method)
    assert below.pairs() == [(0, 2), (1, 0), (2, 1)]
    assert match(scores, threshold=2.0, top_k=1).pairs() == []


@pytest.mark.parametrize("method", ["dense", "certified", "top_k"])
def test_unmatchable_students_stay_unmatched_and_no_pair_is_invented(method: str) -> None:
    """Student 0 has no eligible teacher at all, student 3 only itself: neither may get a pair."""
    n = 6
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(n, n)) + 3.0
    scores[:, 0] = -np.inf
    scores[:, 3] = -np.inf
    scores[3, 3] = 50.0  # a self pair, however good, is never chosen
    kw: dict[str, object] = {"top_k": 2} if method == "top_k" else {"method": method}
    for capacity in (1, 2):
        m = match(scores, capacity=capacity, **kw)  # type: ignore[arg-type]
        _check_constraints(m, scores, capacity, None)
        assert 0 not in m.students.tolist()
        assert 3 not in m.students.tolist()
        assert len(m) == n - 2
        assert all(np.isfinite(scores[t, s]) and t != s for t, s in m.pairs())


@pytest.mark.parametrize("method", ["dense", "certified"])
def test_no_teacher_option_leaves_a_student_unpaired(method: Method) -> None:
    """``local_value``: a student trains alone when no teacher's score beats its own."""
    scores = np.array([[-np.inf, 1.0, 0.2], [0.9, -np.inf, 0.3], [0.5, 0.4, -np.inf]])
    local = np.array([0.0, 5.0, 0.25])
    m = match(scores, local_value=local, method=method)
    assert m.pairs() == [(1, 2), (2, 0)]  # student 1 is better off alone
    assert 1 not in m.students.tolist()
    # ties with the local value stay local (strictly above)
    tie = match(scores, local_value=np.array([0.5, 1.0, 0.3]), method=method)
    assert tie.pairs() == [(1, 0)]
    off = match(scores, method=method)
    assert len(off) == 3
    with pytest.raises(ValueError, match="local_value"):
        match(scores, local_value=np.zeros(2), method=method)
    with pytest.raises(ValueError, match="method"):
        match(scores, method="greedy")  # type: ignore[arg-type]


# ---------------------------------------------------------------- known answers (hand-computed)

INF = np.inf


@pytest.mark.parametrize(
    ("shape", "kwargs", "message"),
    [
        ((3,), {}, r"^scores must be a square matrix, got shape \(3,\)$"),
        ((2, 3), {}, r"^scores must be a square matrix, got shape \(2, 3\)$"),
        ((2, 2), {"capacity": 0}, r"^capacity must be a positive int, got 0$"),
        ((2, 2), {"capacity": True}, r"^capacity must be a positive int, got True$"),
        ((2, 2), {"capacity": 1.0}, r"^capacity must be a positive int, got 1.0$"),
        ((2, 2), {"top_k": 0}, r"^top_k must be a positive int or None, got 0$"),
        ((2, 2), {"top_k": True}, r"^top_k must be a positive int or None, got True$"),
        ((2, 2), {"top_k": 2.0}, r"^top_k must be a positive int or None, got 2.0$"),
        ((2, 2), {"method": "fast"}, r"^unknown matching method 'fast'$"),
        ((2, 2), {"local_value": np.zeros(3)}, r"^local_value must be a \(2,\) array without NaN$"),
        (
            (2, 2),
            {"local_value": np.array([0.0, np.nan])},
            r"^local_value must be a \(2,\) array without NaN$",
        ),
    ],
)
def test_bad_arguments_are_named(shape: tuple[int, ...], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        match(np.zeros(shape), **kwargs)


def test_valid_boundary_arguments() -> None:
    scores = np.array([[-INF, 1.0], [2.0, -INF]])
    assert match(scores, capacity=1, top_k=1).pairs() == [(0, 1), (1, 0)]
    assert match(scores, method="auto").pairs() == [(0, 1), (1, 0)]
    assert match(scores, method="certified").pairs() == [(0, 1), (1, 0)]
    assert match(np.zeros((1, 1)), method="certified").pairs() == []
    assert match(np.zeros((0, 0))).pairs() == []


def test_a_small_matching_by_hand() -> None:
    """3 organizations; best: 0 -> 1 (4), 1 -> 2 (5), 2 -> 0 (3), total 12 (any other matching is
    worse: e.g. 1 -> 0 (6) forces 0 -> 2 (1) and 2 -> 1 (1): 8)."""
    scores = np.array([[9.0, 4.0, 1.0], [6.0, 9.0, 5.0], [3.0, 1.0, 9.0]])
    for method in ("dense", "certified"):
        m = match(scores, method=method)
        assert m.pairs() == [(0, 1), (1, 2), (2, 0)]
        assert m.total == 12.0
        assert len(m) == 3
        assert [type(t) for pair in m.pairs() for t in pair] == [int] * 6
        assert m.teachers.dtype == np.int64
        assert m.students.dtype == np.int64
    sparse = match(scores, top_k=1)
    assert sparse.pairs() == [(0, 1), (1, 2), (2, 0)]
    assert sparse.total == 12.0
    # capacity 2: teacher 1 teaches both others (6 + 5), 0 -> 1 (4): 15
    two = match(scores, capacity=2, method="dense")
    assert two.pairs() == [(0, 1), (1, 0), (1, 2)]
    assert two.total == 15.0
    assert match(scores, capacity=2, method="certified").pairs() == two.pairs()
    # a threshold of 4 leaves only 6 and 5 (1 -> 0, 1 -> 2): teacher 1 can teach one of them
    assert match(scores, threshold=4.0, method="dense").pairs() == [(1, 0)]
    assert match(scores, threshold=4.0, method="dense").total == 6.0
    assert match(scores, threshold=4.0, method="certified").pairs() == [(1, 0)]
    assert match(scores, threshold=4.0, capacity=2, method="dense").pairs() == [(1, 0), (1, 2)]


def test_cardinality_comes_before_the_total() -> None:
    """A great pair (10) that blocks every other: two pairs of 1 are preferred."""
    scores = np.array([[-INF, 10.0, -INF], [-INF, -INF, 1.0], [-INF, 1.0, -INF]])
    # 0 -> 1 (10) leaves student 2 with teacher 1 (1): two pairs, 11; 2 -> 1 and 1 -> 2: two pairs, 2
    methods: tuple[Method, ...] = ("dense", "certified")
    for method in methods:
        m = match(scores, method=method)
        assert m.pairs() == [(0, 1), (1, 2)]
        assert m.total == 11.0
    negative = np.array([[-INF, -1.0, -5.0], [-1.0, -INF, -5.0], [-5.0, -5.0, -INF]])
    for method in methods:
        m = match(negative, method=method)
        assert len(m) == 3  # everybody learns, even at negative scores
        assert m.total == -11.0  # 0 -> 1, 1 -> 2, 2 -> 0 or the mirror: -1 - 5 - 5


def test_penalty_outweighs_any_score_difference() -> None:
    from matchmaker.matching import _penalty

    scores = np.array([[0.0, 1.0], [3.0, 0.0]])
    ok = np.array([[False, True], [True, False]])
    assert _penalty(scores, ok, 2) == (2.0 + 3.0 + 1.0) * 3  # (hi - lo) + max(|hi|, |lo|) + 1, x (n + 1)
    negative = np.array([[0.0, -1.0], [-4.0, 0.0]])
    assert _penalty(negative, ok, 2) == (3.0 + 4.0 + 1.0) * 3


def test_exact_means_by_hand() -> None:
    values = np.array([[1.0, 2.0, 4.0], [8.0, -3.0, 0.5], [0.25, 7.0, 100.0]])
    ok = np.array([[False, True, True], [True, False, False], [False, False, False]])
    rows, cols = _exact_means(values, ok)
    assert rows.tolist() == [3.0, 8.0, 0.0]  # (2 + 4) / 2, 8 / 1, nothing: 0
    assert cols.tolist() == [8.0, 2.0, 4.0]
    zero_rows, zero_cols = _exact_means(np.zeros((2, 2)), np.ones((2, 2), dtype=bool))
    assert zero_rows.tolist() == [0.0, 0.0]
    assert zero_cols.tolist() == [0.0, 0.0]
    tiny = np.array([[2.0**-40, 3 * 2.0**-40], [0.0, 0.0]])
    tiny_rows, _ = _exact_means(tiny, np.ones((2, 2), dtype=bool))
    assert tiny_rows.tolist() == [2.0**-39, 0.0]  # exact: the fixed-point scale keeps small values
    # the fixed-point scale is the largest power of two with |value| * scale * n <= 2**61 (here
    # 2**60): 2**-61 becomes 0.5 and rounds to 0, so the replayed means are exactly these
    coarse_rows, coarse_cols = _exact_means(
        np.array([[2.0**-61, 1.0], [1.0, 0.0]]), np.array([[True, False], [True, False]])
    )
    assert coarse_rows.tolist() == [0.0, 1.0]
    assert coarse_cols.tolist() == [0.5, 0.0]


def test_top_k_mask_keeps_ties() -> None:
    from matchmaker.matching import _top_k_mask

    values = np.array([[5.0, 1.0, 3.0], [3.0, 2.0, 3.0], [1.0, 2.0, 0.0]])
    by_column = _top_k_mask(values, 1, axis=0)
    assert by_column.tolist() == [[True, False, True], [False, True, True], [False, True, False]]
    by_row = _top_k_mask(values, 2, axis=1)
    assert by_row.tolist() == [[True, False, True], [True, False, True], [True, True, False]]


def test_floor_is_the_larger_of_threshold_and_local_value() -> None:
    from matchmaker.matching import _floor

    assert _floor(3, None, None).tolist() == [-INF, -INF, -INF]
    assert _floor(2, 0.5, None).tolist() == [0.5, 0.5]
    assert _floor(3, 0.5, np.array([0.0, 1.0, 0.5])).tolist() == [0.5, 1.0, 0.5]
    assert _floor(2, None, np.array([-2.0, 3.0])).tolist() == [-2.0, 3.0]


def test_eligible_mask_by_hand() -> None:
    from matchmaker.matching import eligible_mask

    scores = np.array([[7.0, np.nan, 2.0], [INF, 9.0, 1.0], [-INF, 3.0, 4.0]])
    assert eligible_mask(scores, None).tolist() == [
        [False, False, True],
        [False, False, True],
        [False, True, False],
    ]
    assert eligible_mask(scores, 1.0).tolist() == [
        [False, False, True],
        [False, False, False],
        [False, True, False],
    ]


def test_sparse_unmatched_student_gets_no_invented_pair() -> None:
    """top_k path: student 2 has no eligible teacher; its private slot must not become a pair."""
    scores = np.array(
        [[-INF, 2.0, -INF, 1.0], [3.0, -INF, -INF, 1.5], [1.0, 1.0, -INF, 4.0], [0.5, 0.5, -INF, -INF]]
    )
    m = match(scores, top_k=1)
    assert m.pairs() == [(0, 1), (1, 0), (2, 3)]
    assert m.total == 9.0
    two = match(scores, top_k=1, capacity=2)
    assert two.pairs() == [(0, 1), (1, 0), (2, 3)]


def _candidates_by_hand(scores: np.ndarray, top_k: int) -> set[tuple[int, int]]:
    """The documented top-k candidate set, written out with loops and sorting (ties kept)."""
    n = scores.shape[0]
    ok = [[t != s and bool(np.isfinite(scores[t, s])) for s in range(n)] for t in range(n)]

    def mean(values: list[float]) -> float:
        return sum(values) / max(1, len(values))

    teacher_mean = [mean([scores[t, s] for s in range(n) if ok[t][s]]) for t in range(n)]
    student_mean = [mean([scores[t, s] for t in range(n) if ok[t][s]]) for s in range(n)]
    chosen: set[tuple[int, int]] = set()
    for s in range(n):  # each student's best teachers by score and by score minus the teacher's mean
        for offsets in ([0.0] * n, teacher_mean):
            keys = [scores[t, s] - offsets[t] if ok[t][s] else -np.inf for t in range(n)]
            kth = sorted(keys, reverse=True)[top_k - 1]
            chosen |= {(t, s) for t in range(n) if ok[t][s] and keys[t] >= kth}
    for t in range(n):  # each teacher's best students by score minus the student's mean
        values = sorted(
            (scores[t, s] - student_mean[s] if ok[t][s] else -np.inf for s in range(n)), reverse=True
        )
        chosen |= {
            (t, s) for s in range(n) if ok[t][s] and scores[t, s] - student_mean[s] >= values[top_k - 1]
        }
    return chosen


def _best_within(scores: np.ndarray, edges: set[tuple[int, int]]) -> tuple[int, float]:
    """Brute force: the largest number of pairs, then the largest total, using only `edges`."""
    n = scores.shape[0]
    options = [[None, *sorted(t for t, s in edges if s == student)] for student in range(n)]
    best = (0, -np.inf)
    for choice in itertools.product(*options):
        teachers = [t for t in choice if t is not None]
        if len(set(teachers)) < len(teachers):
            continue
        total = sum(float(scores[t, s]) for s, t in enumerate(choice) if t is not None)
        if (len(teachers), total) > best:
            best = (len(teachers), total)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_sparse_is_optimal_within_its_documented_candidates(seed: int) -> None:
    """The top-k matching against an independent oracle: candidates by hand, then brute force.

    Seeds where the candidate set misses the dense optimum are included (the sparse result is
    then strictly worse than the dense one), so a wrong candidate set shows."""
    rng = np.random.default_rng(100 + seed)
    n = 6
    scores = np.round(rng.normal(size=(n, n)) * 4.0) / 4.0 + np.arange(n)[:, None] * 0.5  # popular teachers
    scores[rng.random((n, n)) < 0.15] = -np.inf
    edges = _candidates_by_hand(scores, 1)
    m = match(scores, top_k=1)
    assert set(m.pairs()) <= edges
    assert (len(m), m.total) == pytest.approx(_best_within(scores, edges))


@pytest.mark.parametrize(("capacity", "seed"), [(2, 11), (3, 12), (1, 13)])
def test_certified_repairs_poor_candidates_with_several_slots(capacity: int, seed: int) -> None:
    """One initial candidate per student and teacher, several slots per teacher: the scan over all
    pairs (per teacher, against its best slot) must find what the first solve missed."""
    scores = _structured(80, seed, interaction=2.0)
    dense = match(scores, capacity=capacity, method="dense")
    cert = match_certified(scores, capacity=capacity, k0=1)
    assert cert.pairs() == dense.pairs()
    assert cert.total == dense.total
