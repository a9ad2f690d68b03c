"""The synthetic federation: seeded, churns, hides its truth behind DP profiles; LinUCB learns."""

from __future__ import annotations

import math

import numpy as np
import pytest

from matchmaker.policies import PolicyParams
from sim.synthetic import Federation, SimConfig, run_simulation


def test_federation_is_seeded_and_publishes_valid_profiles() -> None:
    a, b = Federation(SimConfig(n_orgs=6, seed=4)), Federation(SimConfig(n_orgs=6, seed=4))
    assert a.features() == b.features()
    assert a.features() != Federation(SimConfig(n_orgs=6, seed=5)).features()
    for org in a.orgs.values():
        assert org.accountant.epsilon_spent == 1.0
        # the published histogram is a noisy version of the hidden distribution
        assert np.abs(np.array(org.features.category_hist) - org.pi).sum() < 0.5
    g = a.true_gain_matrix(a.active_ids())
    assert g.shape == (6, 6)
    assert np.isfinite(g).all()


def test_gain_rewards_complementarity() -> None:
    fed = Federation(SimConfig(n_orgs=30, seed=0))
    ids = fed.active_ids()
    g = fed.true_gain_matrix(ids)
    skill = np.stack([fed.orgs[o].skill for o in ids])
    headroom = np.maximum(skill[:, None, :] - skill[None, :, :], 0.0).sum(axis=2)
    off = ~np.eye(len(ids), dtype=bool)
    assert np.corrcoef(g[off], headroom[off])[0, 1] > 0.5


def test_churn_changes_the_population() -> None:
    cfg = SimConfig(n_orgs=12, seed=1, churn=0.3, rounds=15)
    fed = Federation(cfg)
    seen = set(fed.active_ids())
    sizes = []
    for r in range(15):
        fed.advance(r)
        seen |= set(fed.active_ids())
        sizes.append(len(fed.orgs))
    assert len(seen) > 12
    assert min(sizes) >= cfg.min_orgs
    assert len(set(sizes)) > 1


def test_missing_reports() -> None:
    fed = Federation(SimConfig(n_orgs=20, seed=2, p_missing=0.5))
    ids = fed.active_ids()
    pairs = tuple((ids[i], ids[(i + 1) % 20]) for i in range(20))
    rep = fed.report(0, ids, pairs)
    assert 0 < sum(v is None for v in rep.values()) < 20
    assert rep == fed.report(0, ids, pairs)


def test_runs_are_deterministic_and_oracle_has_no_regret() -> None:
    cfg = SimConfig(n_orgs=8, rounds=15, seed=3, churn=0.1, p_missing=0.1)
    a = run_simulation(PolicyParams(), cfg)
    b = run_simulation(PolicyParams(), cfg)
    assert a.regret == b.regret
    assert a.final_state_digest == b.final_state_digest
    assert min(a.regret) >= -1e-9
    oracle = run_simulation(PolicyParams(name="oracle"), cfg)
    assert max(abs(r) for r in oracle.regret) < 1e-9
    s = a.summary()
    assert s["rounds"] == 15
    assert math.isfinite(s["cumulative_regret"])


def test_linucb_learns_to_beat_random() -> None:
    cfg = SimConfig(n_orgs=16, rounds=60, seed=11)
    lin = run_simulation(PolicyParams(), cfg)
    rnd = run_simulation(PolicyParams(name="random"), cfg)
    assert np.mean(lin.regret[-20:]) < 0.5 * np.mean(rnd.regret[-20:])


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="n_orgs"):
        SimConfig(n_orgs=1)
    with pytest.raises(ValueError, match="churn"):
        SimConfig(churn=1.0)
