"""Policies: one interface, canonical decisions, explicit missing rewards, exact replay."""

from __future__ import annotations

import json
import math
import random
from collections import Counter

import numpy as np
import pytest

from matchmaker.canonical import canonical_json
from matchmaker.policies import (
    Decision,
    LinUCBPolicy,
    PolicyParams,
    make_policy,
    rng_for_round,
)
from sim.synthetic import Federation, SimConfig


def _fed(n: int = 7, seed: int = 0) -> Federation:
    return Federation(SimConfig(n_orgs=n, seed=seed))


def _check(decision: Decision, capacity: int = 1) -> None:
    teachers = [t for t, _ in decision.pairs]
    students = [s for _, s in decision.pairs]
    assert len(set(students)) == len(students)
    assert max(Counter(teachers).values()) <= capacity
    assert all(t != s for t, s in decision.pairs)
    assert list(decision.pairs) == sorted(decision.pairs)


def test_params_digest_is_canonical() -> None:
    p = PolicyParams()
    assert p.digest() == PolicyParams().digest()
    assert len(p.digest()) == 64
    assert json.loads(p.canonical_json())["beta0"] == p.beta0
    assert PolicyParams(beta0=0.51).digest() != p.digest()
    assert PolicyParams.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    with pytest.raises(ValueError, match="unknown policy"):
        PolicyParams(name="greedy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        PolicyParams(threshold=math.nan)
    with pytest.raises(ValueError, match="unknown policy parameters"):
        PolicyParams.from_dict({"nope": 1})


@pytest.mark.parametrize("name", ["linucb", "random", "heuristic", "oracle"])
def test_every_policy_selects_a_valid_matching(name: str) -> None:
    fed = _fed()
    policy = make_policy(PolicyParams(name=name), gain_fn=fed.true_gain_matrix)  # type: ignore[arg-type]
    ids = fed.active_ids()
    d = policy.select(0, ids, fed.features(), rng_for_round(0, 0))
    _check(d)
    assert len(d.pairs) == len(ids)
    assert d.n_arms == len(ids) * (len(ids) - 1)
    ctx = d.contexts()
    assert np.array_equal(ctx[d.chosen_arms], d.chosen_contexts)
    mat = d.score_matrix()
    assert d.total_score == pytest.approx(sum(mat[ids.index(t), ids.index(s)] for t, s in d.pairs))
    canonical_json(d.to_record(include_arms=True))  # JSON-able, finite
    res = policy.observe(d, dict.fromkeys(d.pairs, 0.01))
    assert len(res.used) == len(d.pairs)


def test_capacity_two() -> None:
    fed = _fed(9)
    d = make_policy(PolicyParams(name="heuristic", capacity=2)).select(
        0, fed.active_ids(), fed.features(), rng_for_round(0, 0)
    )
    _check(d, capacity=2)


def test_org_order_does_not_matter() -> None:
    fed = _fed(8)
    ids = list(fed.active_ids())
    shuffled = ids[:]
    random.Random(1).shuffle(shuffled)
    a = make_policy(PolicyParams()).select(3, ids, fed.features(), rng_for_round(0, 3))
    b = make_policy(PolicyParams()).select(3, shuffled, fed.features(), rng_for_round(0, 3))
    assert a.pairs == b.pairs
    assert a.score.tobytes() == b.score.tobytes()


def test_random_policy_is_seeded() -> None:
    fed = _fed(10)
    pol = make_policy(PolicyParams(name="random"))
    a = pol.select(0, fed.active_ids(), fed.features(), rng_for_round(5, 0))
    b = pol.select(0, fed.active_ids(), fed.features(), rng_for_round(5, 0))
    c = pol.select(0, fed.active_ids(), fed.features(), rng_for_round(6, 0))
    assert a.pairs == b.pairs
    assert a.pairs != c.pairs


def test_oracle_needs_the_gain_function() -> None:
    with pytest.raises(ValueError, match="oracle"):
        make_policy(PolicyParams(name="oracle"))


def test_missing_rewards_are_skipped_not_zero() -> None:
    fed = _fed()
    pol = make_policy(PolicyParams())
    assert isinstance(pol, LinUCBPolicy)
    d = pol.select(0, fed.active_ids(), fed.features(), rng_for_round(0, 0))
    rewards: dict[tuple[str, str], float | None] = dict.fromkeys(d.pairs[2:], 0.05)
    rewards[d.pairs[0]] = None  # explicit missing; pairs[1] absent: missing too
    res = pol.observe(d, rewards)
    assert res.missing == d.pairs[:2]
    assert pol.bandit.n_obs == len(d.pairs) - 2
    assert pol.bandit.last_round == 0
    # the same as learning from the reported rows alone
    ref = make_policy(PolicyParams())
    assert isinstance(ref, LinUCBPolicy)
    ref.bandit.update(d.chosen_contexts[2:], [0.05] * (len(d.pairs) - 2), round=0)
    assert ref.state_digest() == pol.state_digest() == res.state_digest


def test_bad_rewards_are_rejected_and_change_nothing() -> None:
    fed = _fed()
    pol = make_policy(PolicyParams())
    d = pol.select(0, fed.active_ids(), fed.features(), rng_for_round(0, 0))
    before = pol.state_digest()
    with pytest.raises(ValueError, match="not chosen"):
        pol.observe(d, {("x", "y"): 1.0})
    with pytest.raises(ValueError, match="finite"):
        pol.observe(d, {d.pairs[0]: math.nan})
    with pytest.raises(ValueError, match="other policy"):
        make_policy(PolicyParams(beta0=3.0)).observe(d, {})
    assert pol.state_digest() == before


def test_decision_scores_equal_bandit_scores() -> None:
    fed = _fed(12)
    pol = make_policy(PolicyParams())
    assert isinstance(pol, LinUCBPolicy)
    for r in range(3):
        d = pol.select(r, fed.active_ids(), fed.features(), rng_for_round(0, r))
        ref = pol.bandit.scores(d.contexts())
        assert ref.ucb.tobytes() == d.score.tobytes()
        assert ref.bonus.tobytes() == d.bonus.tobytes()
        pol.observe(d, fed.report(r, d.org_ids, d.pairs))


def test_replay_from_history_reproduces_every_decision() -> None:
    cfg = SimConfig(n_orgs=10, seed=3, churn=0.2, p_missing=0.2)
    fed = Federation(cfg)
    live = make_policy(PolicyParams())
    history = []
    for r in range(12):
        ids, feats = fed.active_ids(), fed.features()
        d = live.select(r, ids, feats, rng_for_round(cfg.seed, r))
        rewards = fed.report(r, d.org_ids, d.pairs)
        live.observe(d, rewards)
        history.append((ids, feats, d, rewards))
        fed.advance(r)
    replay = make_policy(PolicyParams())
    for r, (ids, feats, d, rewards) in enumerate(history):
        again = replay.select(r, ids, feats, rng_for_round(cfg.seed, r))
        assert again.state_digest == d.state_digest
        assert again.pairs == d.pairs
        assert again.score.tobytes() == d.score.tobytes()
        assert canonical_json(again.to_record()) == canonical_json(d.to_record())
        replay.observe(again, rewards)
    assert replay.state_digest() == live.state_digest()


def test_top_k_fallback_in_a_policy() -> None:
    fed = _fed(12)
    pol = make_policy(PolicyParams(top_k=3))
    d = pol.select(0, fed.active_ids(), fed.features(), rng_for_round(0, 0))
    _check(d)
    assert len(d.pairs) >= 10
