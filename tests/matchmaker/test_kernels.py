"""The compiled kernels compute exactly the reference's bits, and the policy decides the same with them."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import matchmaker.policies as policies
from matchmaker.context import FeatureTable, all_arms, build_contexts
from matchmaker.features import OrgFeatures
from matchmaker.kernels import pair_scores, ucb_matrix
from matchmaker.linucb import LinUCB, LinUCBConfig
from matchmaker.policies import LinUCBPolicy, PolicyParams, rng_for_round
from sim.synthetic import Federation, SimConfig


def _random_table(n: int, k: int, seed: int) -> FeatureTable:
    rng = np.random.default_rng(seed)
    cats = tuple(f"c{i}" for i in range(k))
    feats = {}
    for i in range(n):
        h = rng.dirichlet(np.full(k, 0.3))
        h[rng.random(k) < 0.2] = 0.0  # exact zeros, as released histograms have
        h = h / h.sum() if h.sum() > 0 else np.full(k, 1.0 / k)
        feats[f"org{i:04d}"] = OrgFeatures(
            categories=cats,
            category_hist=tuple(float(v) for v in h),
            pass1=float(rng.choice([0.0, rng.random()])),
            pass1_delta=float(rng.normal(0, 0.1)),
            reputation=float(rng.random()),
            credits=float(rng.random() * 10),
            size_bucket=int(rng.integers(0, 5)),
            family=str(rng.choice(["qwen", "llama", "phi"])),
            lora_rank=int(rng.choice([4, 8, 16, 32])),
        )
    return FeatureTable.build(list(feats), feats, cats)


def _trained(table: FeatureTable, seed: int, rounds: int = 4) -> LinUCB:
    rng = np.random.default_rng(seed)
    bandit = LinUCB(LinUCBConfig(dim=table.dim, beta0=0.8, beta_schedule="inverse_sqrt", ridge=0.5))
    t, s = all_arms(table.n)
    x = build_contexts(table, t, s)
    for r in range(rounds):
        idx = rng.choice(len(t), size=min(len(t), 40), replace=False)
        bandit.update(x[idx], rng.normal(size=len(idx)) * 3.0 + 1.0, round=r)
    return bandit


@pytest.mark.parametrize(("n", "k", "seed"), [(2, 1, 0), (7, 3, 1), (131, 8, 2), (260, 5, 3)])
def test_kernel_bits_equal_the_reference(n: int, k: int, seed: int) -> None:
    table = _random_table(n, k, seed)
    bandit = _trained(table, seed)
    theta, linv, beta = bandit.scoring_factors()
    t, s = all_arms(n)
    ref = bandit.scores(build_contexts(table, t, s))
    mat = ucb_matrix(table, theta, linv, beta, teacher_block=17)
    assert mat[t, s].tobytes() == ref.ucb.tobytes()
    assert np.isneginf(np.diag(mat)).all()
    mean, bonus, ucb = pair_scores(table, t, s, theta, linv, beta)
    assert mean.tobytes() == ref.mean.tobytes()
    assert bonus.tobytes() == ref.bonus.tobytes()
    assert ucb.tobytes() == ref.ucb.tobytes()


def test_kernel_bits_do_not_depend_on_threads() -> None:
    table = _random_table(150, 8, 5)
    theta, linv, beta = _trained(table, 5).scoring_factors()
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = ucb_matrix(table, theta, linv, beta)
        numba.set_num_threads(before)
        many = ucb_matrix(table, theta, linv, beta, teacher_block=7)
    finally:
        numba.set_num_threads(before)
    assert one.tobytes() == many.tobytes()


def test_kernel_rejects_mismatched_factors() -> None:
    table = _random_table(5, 2, 0)
    theta, linv, beta = _trained(table, 0).scoring_factors()
    with pytest.raises(ValueError, match="do not fit"):
        ucb_matrix(table, theta[:-1], linv, beta)
    with pytest.raises(ValueError, match="out of range"):
        pair_scores(table, np.array([0]), np.array([5]), theta, linv, beta)


def test_recorded_history_decides_the_same_with_and_without_the_kernel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A simulated market's history replayed twice: numpy reference vs compiled kernel, all bits."""
    fed = Federation(SimConfig(n_orgs=70, seed=11))
    params = PolicyParams()
    runs: dict[str, list[tuple[bytes, tuple[tuple[str, str], ...], bytes, bytes, str]]] = {}
    for label, threshold in (("reference", 10**9), ("kernel", 0)):
        monkeypatch.setattr(policies, "KERNEL_MIN_ORGS", threshold)
        pol = LinUCBPolicy(params)
        rng = np.random.default_rng(3)
        out = []
        for r in range(4):
            d = pol.select(r, fed.active_ids(), fed.features(), rng_for_round(1, r))
            mean, bonus, score = d.arm_values(d.chosen_arms)
            out.append((d.score_mat.tobytes(), d.pairs, mean.tobytes(), bonus.tobytes(), d.state_digest))
            assert score.tobytes() == d.score_mat[d.arm_pairs(d.chosen_arms)].tobytes()
            pol.observe(d, {p: float(rng.normal()) for p in d.pairs})
        runs[label] = out
    assert runs["reference"] == runs["kernel"]
    # the lazily rebuilt per-arm views agree with the matrix
    d = pol.select(9, fed.active_ids(), fed.features(), rng_for_round(1, 9))
    ref = pol.bandit.scores(d.contexts())
    assert ref.ucb.tobytes() == d.score.tobytes()
    assert ref.mean.tobytes() == d.mean.tobytes()
    assert ref.bonus.tobytes() == d.bonus.tobytes()
