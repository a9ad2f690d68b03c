"""Mechanisms: pair history features, repeat decay and cap, no-teacher option, seeded ties, discounting."""

from __future__ import annotations

import numpy as np
import pytest

from matchmaker.context import FeatureTable, build_contexts
from matchmaker.linucb import LinUCB, LinUCBConfig
from matchmaker.mechanisms import (
    PAIR_FEATURE_NAMES,
    MechanismError,
    PairHistory,
    PublicSignals,
    adjust_for_repeats,
    extended_contexts,
    pair_features,
)
from matchmaker.policies import LinUCBPolicy, PolicyParams, make_policy, rng_for_round
from sim.synthetic import Federation, SimConfig


def _fed(n: int = 6, seed: int = 0) -> Federation:
    return Federation(SimConfig(n_orgs=n, seed=seed))


def _table(fed: Federation) -> FeatureTable:
    return FeatureTable.build(fed.active_ids(), fed.features(), PolicyParams().categories)


def test_pair_features_hand_computed() -> None:
    fed = _fed(4)
    table = _table(fed)
    a, b, c, _ = table.org_ids
    hist = PairHistory.of([(0, a, b, 0.25), (2, a, b, None), (3, b, a, -1.0), (5, a, c, 0.5)])
    k = len(table.categories)
    passes = {a: [1.0] * k, b: [0.5] * k}
    signals = PublicSignals(passes=passes, data_size_bucket={a: 3, b: 1}, bundle_size={(a, b): 7})
    t = np.array([0, 1, 0, 2], dtype=np.int64)
    s = np.array([1, 0, 2, 0], dtype=np.int64)
    f = pair_features(table, t, s, round=4, history=hist, signals=signals)
    assert f.shape == (4, len(PAIR_FEATURE_NAMES))
    # a -> b met twice before round 4; the last *reported* reward is 0.25; last met in round 2
    assert f[0, :3].tolist() == [2.0, 0.25, 1.0 / 3.0]
    assert f[1, :3].tolist() == [1.0, -1.0, 0.5]
    assert f[2, :3].tolist() == [0.0, 0.0, 0.0]  # a -> c meets only in round 5: the future is unknown
    assert f[0, 3] == pytest.approx(float(np.sum(table.hist[1])))  # passes 1.0 . h_b
    assert f[1, 3] == pytest.approx(0.5 * float(np.sum(table.hist[0])))
    assert f[3, 3] == 0.0  # c publishes no passes
    assert f[:, 4].tolist() == [2.0, -2.0, 3.0, -3.0]
    assert f[0, 5] == pytest.approx(np.log(8.0))
    assert f[1, 5] == 0.0
    x = extended_contexts(table, t, s, 4, hist, signals)
    assert np.array_equal(x[:, : table.dim], build_contexts(table, t, s))
    assert np.array_equal(x[:, table.dim :], f)
    # a bandit learns on the extended contexts, reproducibly
    bandit = LinUCB(LinUCBConfig(dim=x.shape[1]))
    bandit.update(x, [0.1, 0.2, 0.3, 0.4], round=4)
    assert bandit.scores(x).ucb.tobytes() == LinUCB.from_dict(bandit.to_dict()).scores(x).ucb.tobytes()


def test_history_is_validated() -> None:
    with pytest.raises(MechanismError, match="round order"):
        PairHistory.of([(2, "a", "b", None), (1, "a", "b", None)])
    with pytest.raises(MechanismError, match="self pair"):
        PairHistory.of([(0, "a", "a", None)])
    with pytest.raises(MechanismError, match="finite"):
        PairHistory.of([(0, "a", "b", float("nan"))])


def test_repeat_decay_and_cap() -> None:
    ids = ("a", "b", "c")
    hist = PairHistory.of([(1, "a", "b", 0.1), (3, "a", "b", 0.1), (3, "b", "c", 0.0)])
    base = np.zeros((3, 3))
    decayed = adjust_for_repeats(base.copy(), ids, hist, 4, penalty=1.0, decay=0.5)
    assert decayed[0, 1] == -(0.5**3 + 0.5**1)  # two earlier meetings, 3 and 1 rounds ago
    assert decayed[1, 2] == -0.5
    assert decayed[1, 0] == 0.0  # the other direction is another pair
    assert adjust_for_repeats(base.copy(), ids, hist, 4).tolist() == base.tolist()  # off by default
    capped = adjust_for_repeats(base.copy(), ids, hist, 4, cap=2, window=5)
    assert capped[0, 1] == -np.inf
    assert capped[1, 2] == 0.0
    # meetings older than the window do not count towards the cap
    assert adjust_for_repeats(base.copy(), ids, hist, 4, cap=2, window=2)[0, 1] == 0.0
    with pytest.raises(MechanismError):
        adjust_for_repeats(base.copy(), ids, hist, 4, cap=0)


def test_policy_repeat_cap_and_no_teacher_option() -> None:
    fed = _fed(5)
    ids = fed.active_ids()
    pol = make_policy(PolicyParams(name="heuristic", repeat_cap=1, repeat_window=3))
    first = pol.select(0, ids, fed.features(), rng_for_round(0, 0))
    hist = PairHistory.of([(0, t, s, None) for t, s in first.pairs])
    second = pol.select(1, ids, fed.features(), rng_for_round(0, 1), history=hist)
    assert not set(first.pairs) & set(second.pairs)
    assert len(second.pairs) == len(ids)
    # no teacher beats a student's local value: that student stays unpaired
    loner = ids[0]
    alone = pol.select(1, ids, fed.features(), rng_for_round(0, 1), local_value={loner: 1e9})
    assert loner not in [s for _, s in alone.pairs]
    assert len(alone.pairs) == len(ids) - 1


def test_mechanisms_leave_the_default_digest_alone() -> None:
    assert "tie_break" not in PolicyParams().to_dict()
    assert PolicyParams(tie_break="seeded").digest() != PolicyParams().digest()
    assert PolicyParams.from_dict(PolicyParams(repeat_cap=2).to_dict()) == PolicyParams(repeat_cap=2)
    with pytest.raises(ValueError, match="tie_break"):
        PolicyParams(tie_break="alphabetical")  # type: ignore[arg-type]


def test_seeded_ties_make_round_zero_random_and_replayable() -> None:
    fed = _fed(8)
    ids = fed.active_ids()
    # index tie-breaking: an untrained LinUCB pairs by the largest ||x|| regardless of the seed
    plain = [
        LinUCBPolicy(PolicyParams()).select(0, ids, fed.features(), rng_for_round(s, 0)).pairs
        for s in range(4)
    ]
    assert len(set(plain)) == 1
    seeded = PolicyParams(tie_break="seeded")
    picks = [LinUCBPolicy(seeded).select(0, ids, fed.features(), rng_for_round(s, 0)).pairs for s in range(4)]
    assert len(set(picks)) > 1
    again = [LinUCBPolicy(seeded).select(0, ids, fed.features(), rng_for_round(s, 0)).pairs for s in range(4)]
    assert picks == again
    for pairs in picks:
        assert len(pairs) == len(ids)
        assert all(t != s for t, s in pairs)
        assert list(pairs) == sorted(pairs)
    # once it has learnt something the scores decide (ties only), still reproducibly
    pol = LinUCBPolicy(seeded)
    d = pol.select(0, ids, fed.features(), rng_for_round(1, 0))
    pol.observe(d, {p: 0.1 * i for i, p in enumerate(d.pairs)})
    d1 = pol.select(1, ids, fed.features(), rng_for_round(1, 1))
    ref = LinUCBPolicy(PolicyParams(), bandit=LinUCB.from_dict(pol.bandit.to_dict()))
    assert d1.total_score == pytest.approx(
        ref.select(1, ids, fed.features(), rng_for_round(1, 1)).total_score
    )


def test_discounted_linucb() -> None:
    x = np.array([[1.0, 0.5], [1.0, -0.5]])
    plain = LinUCB(LinUCBConfig(dim=2))
    gamma = LinUCB(LinUCBConfig(dim=2, discount=1.0))
    plain.update(x, [1.0, 0.0])
    gamma.update(x, [1.0, 0.0])
    assert plain.state_digest() == gamma.state_digest()
    assert "discount" not in plain.to_dict()["config"]
    d = LinUCB(LinUCBConfig(dim=2, discount=0.5, ridge=2.0))
    d.update(x[:1], [1.0])
    d.update(x[1:], [0.0])
    # A = 0.5 (2 I + x0 x0^T) + 0.5 * 2 I + x1 x1^T, by hand
    expected = 0.5 * (2.0 * np.eye(2) + np.outer(x[0], x[0])) + np.eye(2) + np.outer(x[1], x[1])
    assert d.a.tolist() == expected.tolist()
    assert d.b.tolist() == (0.5 * x[0]).tolist()
    assert LinUCB.from_dict(d.to_dict()).state_digest() == d.state_digest()
    with pytest.raises(ValueError, match="discount"):
        LinUCBConfig(dim=2, discount=0.0)
