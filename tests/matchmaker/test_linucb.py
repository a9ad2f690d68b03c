"""LinUCB: correctness against a naive float64 reference, bit-exact determinism and replay."""

from __future__ import annotations

import hashlib
import json
import math
import struct

import numpy as np
import pytest

from matchmaker.linucb import LinUCB, LinUCBConfig

D = 6


def _history(seed: int, rounds: int = 5, per_round: int = 7) -> list[tuple[int, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=D)
    out = []
    for r in range(rounds):
        x = rng.random((per_round, D))
        x[:, 0] = 1.0
        y = 3.0 + 2.0 * (x @ theta) + rng.normal(0, 0.1, per_round)
        out.append((r, x, y))
    return out


def _run(history: list[tuple[int, np.ndarray, np.ndarray]], cfg: LinUCBConfig) -> LinUCB:
    bandit = LinUCB(cfg)
    for r, x, y in history:
        bandit.update(x, y, round=r)
    return bandit


@pytest.mark.parametrize("normalise", [True, False])
def test_matches_naive_reference(normalise: bool) -> None:
    cfg = LinUCBConfig(dim=D, ridge=0.7, beta0=1.3, normalise_rewards=normalise)
    hist = _history(0)
    bandit = _run(hist, cfg)
    x_all = np.concatenate([h[1] for h in hist])
    y_all = np.concatenate([h[2] for h in hist])
    a = 0.7 * np.eye(D) + x_all.T @ x_all
    target = (y_all - y_all.mean()) / y_all.std(ddof=1) if normalise else y_all
    theta = np.linalg.solve(a, x_all.T @ target)
    q = np.random.default_rng(5).random((40, D))
    mean, bonus, ucb = bandit.scores(q)
    ref_bonus = np.sqrt(np.einsum("ij,ij->i", q, np.linalg.solve(a, q.T).T))
    np.testing.assert_allclose(bandit.theta(), theta, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mean, q @ theta, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(bonus, ref_bonus, rtol=1e-9)
    np.testing.assert_allclose(ucb, mean + 1.3 * bonus, rtol=1e-12)
    np.testing.assert_allclose(bandit.a_inverse(), np.linalg.inv(a), rtol=1e-9, atol=1e-12)
    assert bandit.reward_stats()[0] == pytest.approx(y_all.mean() if normalise else 0.0)


def test_fresh_bandit_scores() -> None:
    bandit = LinUCB(LinUCBConfig(dim=3, ridge=4.0, beta0=2.0))
    mean, bonus, ucb = bandit.scores(np.array([[1.0, 0.0, 0.0], [0.0, 3.0, 4.0]]))
    assert mean.tolist() == [0.0, 0.0]
    np.testing.assert_allclose(bonus, [0.5, 2.5])
    np.testing.assert_allclose(ucb, [1.0, 5.0])


def test_two_runs_give_identical_bits() -> None:
    cfg = LinUCBConfig(dim=D, beta_schedule="sqrt_log")
    a, b = _run(_history(1), cfg), _run(_history(1), cfg)
    assert a.state_digest() == b.state_digest()
    q = np.random.default_rng(2).random((100, D))
    for sa, sb in zip(a.scores(q), b.scores(q), strict=True):
        assert sa.tobytes() == sb.tobytes()
    assert len(a.state_digest()) == 64
    assert a.state_digest() != _run(_history(2), cfg).state_digest()


def test_block_size_does_not_change_bits() -> None:
    bandit = _run(_history(3), LinUCBConfig(dim=D))
    q = np.asfortranarray(np.random.default_rng(3).random((1001, D)))
    ref = bandit.scores(q)
    for block in (1, 7, 1000, 5000):
        for s_ref, s_blk in zip(ref, bandit.scores(q, block=block), strict=True):
            assert s_ref.tobytes() == s_blk.tobytes()


def test_dict_round_trip_is_exact_and_resumable() -> None:
    cfg = LinUCBConfig(dim=D, beta_schedule="inverse_sqrt", beta_tau=3.0)
    hist = _history(4, rounds=6)
    full = _run(hist, cfg)
    half = _run(hist[:3], cfg)
    restored = LinUCB.from_dict(json.loads(half.to_json()))
    assert restored.state_digest() == half.state_digest()
    for r, x, y in hist[3:]:
        restored.update(x, y, round=r)
    assert restored.state_digest() == full.state_digest()
    q = np.random.default_rng(0).random((10, D))
    assert restored.scores(q).ucb.tobytes() == full.scores(q).ucb.tobytes()
    assert full.copy().state_digest() == full.state_digest()


def test_replay_reproduces_every_score() -> None:
    cfg = LinUCBConfig(dim=D, beta_schedule="sqrt_log")
    hist = _history(5, rounds=8)
    q = np.random.default_rng(6).random((50, D))
    live = LinUCB(cfg)
    recorded = []
    for r, x, y in hist:
        recorded.append((live.state_digest(), live.scores(q).ucb.tobytes()))
        live.update(x, y, round=r)
    replay = LinUCB(cfg)
    for (r, x, y), (digest, ucb) in zip(hist, recorded, strict=True):
        assert replay.state_digest() == digest
        assert replay.scores(q).ucb.tobytes() == ucb
        replay.update(x.copy(), y.copy(), round=r)
    assert replay.state_digest() == live.state_digest()


def test_welford_matches_numpy() -> None:
    bandit = _run(_history(7), LinUCBConfig(dim=D))
    y = np.concatenate([h[2] for h in _history(7)])
    mu, sigma = bandit.reward_stats()
    assert mu == pytest.approx(y.mean(), rel=1e-12)
    assert sigma == pytest.approx(y.std(ddof=1), rel=1e-12)


def test_bad_updates_change_nothing() -> None:
    bandit = _run(_history(8, rounds=2), LinUCBConfig(dim=D))
    digest = bandit.state_digest()
    x = np.ones((2, D))
    bad_inputs: list[tuple[np.ndarray, list[float], int]] = [
        (x, [1.0, math.nan], 5),
        (x, [1.0], 5),
        (np.ones((2, D + 1)), [1.0, 2.0], 5),
        (x, [1.0, 2.0], 1),
        (x.astype(np.float32), [1.0, 2.0], 5),
    ]
    for contexts, rewards, rnd in bad_inputs:
        with pytest.raises(ValueError, match=r"finite|shape|round|float64"):
            bandit.update(contexts, rewards, round=rnd)
    assert bandit.state_digest() == digest


def test_empty_update_advances_the_schedule() -> None:
    bandit = LinUCB(LinUCBConfig(dim=2, beta0=2.0, beta_schedule="inverse_sqrt", beta_tau=1.0))
    assert bandit.beta() == 2.0
    bandit.update(np.zeros((0, 2)), [], round=0)
    assert bandit.n_batches == 1
    assert bandit.n_obs == 0
    assert bandit.beta() == 2.0 / math.sqrt(2.0)


def test_beta_schedules() -> None:
    assert LinUCBConfig(dim=1, beta0=0.5).beta(100) == 0.5
    log_cfg = LinUCBConfig(dim=1, beta0=0.5, beta_schedule="sqrt_log")
    assert log_cfg.beta(0) == 0.5
    assert log_cfg.beta(99) == pytest.approx(0.5 * math.sqrt(1 + math.log(100)), rel=1e-15)
    with pytest.raises(ValueError, match="beta_schedule"):
        LinUCBConfig(dim=1, beta_schedule="bogus")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dim"):
        LinUCBConfig(dim=0)


def test_from_dict_rejects_bad_state() -> None:
    d = _run(_history(9, rounds=1), LinUCBConfig(dim=D)).to_dict()
    with pytest.raises(ValueError, match="shape"):
        LinUCB.from_dict({**d, "b": [0.0] * (D + 1)})
    with pytest.raises(ValueError, match="version"):
        LinUCB.from_dict({**d, "version": 99})


# ---------------------------------------------------------------- known answers (pin the arithmetic)


def _two_rows() -> tuple[np.ndarray, list[float]]:
    return np.array([[1.0, 0.5, -0.25], [1.0, -1.0, 2.0]]), [0.5, -1.25]


def test_reward_stats_known_answers() -> None:
    cfg = LinUCBConfig(dim=1)
    small = LinUCB(cfg)
    small.update(np.ones((3, 1)), [0.1, 0.2, 0.4])  # m2 = 0.04667 < 1: still a real spread
    mu, sigma = small.reward_stats()
    assert mu == pytest.approx(0.7 / 3, rel=1e-15)
    assert sigma == pytest.approx(
        math.sqrt(((0.1 - 0.7 / 3) ** 2 + (0.2 - 0.7 / 3) ** 2 + (0.4 - 0.7 / 3) ** 2) / 2)
    )
    assert 0.0 < sigma < 1.0
    same = LinUCB(cfg)
    same.update(np.ones((4, 1)), [0.3, 0.3, 0.3, 0.3])  # no spread: sigma falls back to 1, not 0
    assert same.reward_stats()[0] == pytest.approx(0.3)
    assert same.reward_stats()[1] == 1.0
    one = LinUCB(cfg)
    one.update(np.ones((1, 1)), [2.5])
    assert one.reward_stats() == (2.5, 1.0)
    # a state with a single reward but a non-zero m2 (only reachable by loading) must not divide by 0
    loaded = LinUCB.from_dict({**one.to_dict(), "reward_m2": 0.5})
    assert loaded.reward_stats() == (2.5, 1.0)
    assert LinUCB(LinUCBConfig(dim=1, normalise_rewards=False)).reward_stats() == (0.0, 1.0)


def test_state_digest_known_value_and_last_round() -> None:
    x, r = _two_rows()
    bandit = LinUCB(LinUCBConfig(dim=3))
    bandit.update(x, r, round=3)
    assert bandit.state_digest() == "abc2949dd6d468d35f42daa5430e0152c7dc9d2c3f218ca37aeddc07341c5094"
    # the same bytes built independently of `state_digest`
    parts = [b"knexa.linucb.state.v1\x00", struct.pack("<qqqqq", 1, 3, 2, 1, 3)]
    parts.append(struct.pack("<dd", bandit.reward_mean, bandit.reward_m2))
    for arr in (bandit.a, bandit.b, bandit.ctx_sum):
        parts.append(b"f8" + struct.pack("<q", arr.ndim) + b"".join(struct.pack("<q", k) for k in arr.shape))
        parts.append(np.ascontiguousarray(arr, dtype="<f8").tobytes())
    assert hashlib.sha256(b"".join(parts)).hexdigest() == bandit.state_digest()
    assert bandit.reward_mean == -0.375
    assert bandit.reward_m2 == 1.53125
    # identical statistics, another last round: another digest
    other = LinUCB.from_dict({**bandit.to_dict(), "last_round": 4})
    assert other.state_digest() != bandit.state_digest()
    unset = LinUCB.from_dict({**bandit.to_dict(), "last_round": None})
    assert unset.state_digest() not in {bandit.state_digest(), other.state_digest()}


def test_exploration_schedules_known_values() -> None:
    inv = LinUCBConfig(dim=1, beta0=2.0, beta_schedule="inverse_sqrt", beta_tau=4.0)
    assert inv.beta(0) == 2.0
    assert inv.beta(12) == 1.0  # 2 / sqrt(1 + 12 / 4) = 2 / 2
    assert inv.beta(60) == 0.5  # 2 / sqrt(16)
    log = LinUCBConfig(dim=1, beta0=3.0, beta_schedule="sqrt_log")
    assert log.beta(0) == 3.0
    assert log.beta(1) == pytest.approx(3.0 * math.sqrt(1.0 + 0.6931471805599453), rel=1e-15)  # ln 2
    assert log.beta(6) == pytest.approx(3.0 * math.sqrt(1.0 + 1.9459101490553132), rel=1e-15)  # ln 7
    assert LinUCBConfig(dim=1, beta0=0.7).beta(99) == 0.7
    # the bandit counts one batch per update, also for empty batches
    bandit = LinUCB(LinUCBConfig(dim=1, beta0=2.0, beta_schedule="inverse_sqrt", beta_tau=1.0))
    betas = [bandit.beta()]
    for k in range(3):
        bandit.update(np.ones((k, 1)), [1.0] * k)
        betas.append(bandit.beta())
    assert bandit.n_batches == 3
    assert betas == [2.0, 2.0 / math.sqrt(2.0), 2.0 / math.sqrt(3.0), 1.0]


def test_discounted_updates_known_answers() -> None:
    """gamma = 0.5, ridge 2: every number below is exact in binary and computed by hand."""
    bandit = LinUCB(LinUCBConfig(dim=2, ridge=2.0, discount=0.5))
    bandit.update(np.array([[1.0, 2.0]]), [3.0], round=0)
    # discounted first (0.5 * 2I + 0.5 * 2I = 2I: the prior never fades), then the row
    assert bandit.a.tolist() == [[3.0, 2.0], [2.0, 6.0]]
    assert bandit.b.tolist() == [3.0, 6.0]
    assert bandit.ctx_sum.tolist() == [1.0, 2.0]
    bandit.update(np.array([[0.0, 1.0]]), [1.0], round=1)
    # A = 0.5 A + 0.5 * 2 I = [[2.5, 1], [1, 4]], + x x^T; b and s halved, + r x and + x
    assert bandit.a.tolist() == [[2.5, 1.0], [1.0, 5.0]]
    assert bandit.b.tolist() == [1.5, 4.0]
    assert bandit.ctx_sum.tolist() == [0.5, 2.0]
    # the reward statistics are not discounted: mean of 3 and 1, m2 = (3 - 2)^2 + (1 - 2)^2
    assert (bandit.n_obs, bandit.n_batches, bandit.last_round) == (2, 2, 1)
    assert (bandit.reward_mean, bandit.reward_m2) == (2.0, 2.0)
    assert bandit.reward_stats() == (2.0, math.sqrt(2.0))
    # theta = A^-1 (b - mu s) / sigma = [[5, -1], [-1, 2.5]] / 11.5 @ [0.5, 0] / sqrt 2
    root2 = math.sqrt(2.0)
    assert bandit.theta().tolist() == pytest.approx([2.5 / 11.5 / root2, -0.5 / 11.5 / root2], rel=1e-14)
    assert bandit.a_inverse().ravel().tolist() == pytest.approx(
        [5.0 / 11.5, -1.0 / 11.5, -1.0 / 11.5, 2.5 / 11.5], rel=1e-14
    )
    scores = bandit.scores(np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert scores.mean.tolist() == pytest.approx([2.5 / 11.5 / root2, -0.5 / 11.5 / root2], rel=1e-14)
    assert scores.bonus.tolist() == pytest.approx([math.sqrt(5.0 / 11.5), math.sqrt(2.5 / 11.5)], rel=1e-14)
    assert scores.ucb.tolist() == pytest.approx((scores.mean + scores.bonus).tolist(), rel=1e-15)
    theta, linv, beta = bandit.scoring_factors()
    assert theta.tolist() == bandit.theta().tolist()
    assert (linv.T @ linv).ravel().tolist() == pytest.approx(bandit.a_inverse().ravel().tolist(), rel=1e-15)
    assert beta == 1.0
    assert bandit.to_dict()["config"]["discount"] == 0.5


def test_undiscounted_known_answers_and_config_bytes() -> None:
    bandit = LinUCB(LinUCBConfig(dim=2, ridge=2.0, beta0=3.0))
    assert bandit.a.tolist() == [[2.0, 0.0], [0.0, 2.0]]
    bandit.update(np.array([[1.0, 2.0], [0.0, 1.0]]), [3.0, 1.0])
    assert bandit.a.tolist() == [[3.0, 2.0], [2.0, 7.0]]
    assert bandit.b.tolist() == [3.0, 7.0]
    assert bandit.ctx_sum.tolist() == [1.0, 3.0]
    assert bandit.last_round is None
    # c = (b - 2 s) / sqrt 2 = [1, 1] / sqrt 2; A^-1 = [[7, -2], [-2, 3]] / 17
    root2 = math.sqrt(2.0)
    assert bandit.theta().tolist() == pytest.approx([5.0 / 17 / root2, 1.0 / 17 / root2], rel=1e-14)
    scores = bandit.scores(np.array([[1.0, 1.0]]))
    bonus = math.sqrt((7.0 - 4.0 + 3.0) / 17)
    assert scores.bonus.tolist() == pytest.approx([bonus], rel=1e-14)
    assert scores.ucb.tolist() == pytest.approx([6.0 / 17 / root2 + 3.0 * bonus], rel=1e-14)
    # the config as stored: `discount` only when it is not 1, every number a float
    assert bandit.to_dict()["config"] == {
        "dim": 2,
        "ridge": 2.0,
        "beta0": 3.0,
        "beta_schedule": "constant",
        "beta_tau": 20.0,
        "normalise_rewards": True,
    }
    config = LinUCBConfig(dim=1, ridge=2, beta0=1, beta_tau=3, discount=1)
    assert [type(v) for v in (config.ridge, config.beta0, config.beta_tau, config.discount)] == [float] * 4
    assert "discount" not in LinUCB(config).to_dict()["config"]
    assert LinUCB.from_dict(bandit.to_dict()).to_json() == bandit.to_json()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dim": 0}, r"^dim must be an int in \[1, 512\], got 0$"),
        ({"dim": 513}, r"^dim must be an int in \[1, 512\], got 513$"),
        ({"dim": True}, r"^dim must be an int in \[1, 512\], got True$"),
        ({"dim": 2.0}, r"^dim must be an int in \[1, 512\], got 2.0$"),
        ({"dim": 1, "ridge": 0.0}, r"^ridge must be a finite positive number, got 0.0$"),
        ({"dim": 1, "ridge": math.inf}, r"^ridge must be a finite positive number, got inf$"),
        ({"dim": 1, "ridge": "1"}, r"^ridge must be a finite positive number, got '1'$"),
        ({"dim": 1, "beta_tau": -1.0}, r"^beta_tau must be a finite positive number, got -1.0$"),
        ({"dim": 1, "beta_tau": math.nan}, r"^beta_tau must be a finite positive number, got nan$"),
        ({"dim": 1, "beta0": -1e-300}, r"^beta0 must be finite and >= 0, got -1e-300$"),
        ({"dim": 1, "beta0": math.inf}, r"^beta0 must be finite and >= 0, got inf$"),
        ({"dim": 1, "beta0": "1"}, r"^beta0 must be finite and >= 0, got '1'$"),
        ({"dim": 1, "beta_schedule": "linear"}, r"^unknown beta_schedule 'linear'$"),
        ({"dim": 1, "discount": 0.0}, r"^discount must be in \(0, 1\], got 0.0$"),
        ({"dim": 1, "discount": 1.5}, r"^discount must be in \(0, 1\], got 1.5$"),
        ({"dim": 1, "discount": True}, r"^discount must be in \(0, 1\], got True$"),
        ({"dim": 1, "discount": "1"}, r"^discount must be in \(0, 1\], got '1'$"),
    ],
)
def test_config_refuses_values_outside_their_bounds(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LinUCBConfig(**kwargs)  # type: ignore[arg-type]


def test_config_accepts_its_bounds() -> None:
    assert LinUCBConfig(dim=1).dim == 1
    assert LinUCBConfig(dim=512).dim == 512
    assert LinUCBConfig(dim=1, beta0=0.0).beta0 == 0.0
    assert LinUCBConfig(dim=1, discount=1.0).discount == 1.0
    assert LinUCBConfig(dim=1, discount=1e-9).discount == 1e-9
    assert LinUCBConfig(dim=1, ridge=1e-300, beta_tau=1e-300).ridge == 1e-300


def _state() -> dict[str, object]:
    bandit = LinUCB(LinUCBConfig(dim=2))
    bandit.update(np.array([[1.0, 2.0], [0.0, 1.0]]), [3.0, 1.0], round=4)
    return bandit.to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, r"^unsupported LinUCB state version 2$"),
        ({"version": None}, r"^unsupported LinUCB state version None$"),
        ({"config": None}, r"^LinUCB state lacks its config$"),
        ({"config": [2]}, r"^LinUCB state lacks its config$"),
        ({"a": [[1.0, 0.0]]}, r"^LinUCB state arrays have the wrong shape$"),
        ({"b": [1.0]}, r"^LinUCB state arrays have the wrong shape$"),
        ({"ctx_sum": [1.0, 2.0, 3.0]}, r"^LinUCB state arrays have the wrong shape$"),
        ({"a": [[1.0, math.inf], [0.0, 1.0]]}, r"^LinUCB state arrays must be finite$"),
        ({"b": [math.nan, 0.0]}, r"^LinUCB state arrays must be finite$"),
        ({"ctx_sum": [0.0, -math.inf]}, r"^LinUCB state arrays must be finite$"),
        ({"n_obs": -1}, r"^n_obs must be a non-negative int$"),
        ({"n_obs": True}, r"^n_obs must be a non-negative int$"),
        ({"n_obs": 2.0}, r"^n_obs must be a non-negative int$"),
        ({"n_batches": -1}, r"^n_batches must be a non-negative int$"),
        ({"n_batches": False}, r"^n_batches must be a non-negative int$"),
        ({"last_round": True}, r"^last_round must be an int or null$"),
        ({"last_round": 4.0}, r"^last_round must be an int or null$"),
        ({"reward_mean": math.inf}, r"^reward statistics must be finite$"),
        ({"reward_m2": math.nan}, r"^reward statistics must be finite$"),
    ],
)
def test_from_dict_names_what_is_wrong(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LinUCB.from_dict({**_state(), **change})


def test_from_dict_restores_every_field_and_accepts_zero_counters() -> None:
    state = _state()
    bandit = LinUCB.from_dict(state)
    assert bandit.a.tolist() == [[2.0, 2.0], [2.0, 6.0]]
    assert bandit.b.tolist() == [3.0, 7.0]
    assert bandit.ctx_sum.tolist() == [1.0, 3.0]
    assert (bandit.n_obs, bandit.n_batches, bandit.last_round) == (2, 1, 4)
    assert (bandit.reward_mean, bandit.reward_m2) == (2.0, 2.0)
    assert [a.dtype for a in (bandit.a, bandit.b, bandit.ctx_sum)] == [np.float64] * 3
    fresh = LinUCB.from_dict({**state, "n_obs": 0, "n_batches": 0, "last_round": None})
    assert (fresh.n_obs, fresh.n_batches, fresh.last_round) == (0, 0, None)
    assert LinUCB.from_dict({**state, "last_round": -3}).last_round == -3
    copied = bandit.copy()
    assert copied.state_digest() == bandit.state_digest()
    assert copied.a is not bandit.a


def test_a_singular_design_matrix_is_refused_by_name() -> None:
    singular = {**_state(), "a": [[1.0, 1.0], [1.0, 1.0]]}  # positive semi-definite, not definite
    with pytest.raises(ArithmeticError, match=r"^design matrix is not positive definite$"):
        LinUCB.from_dict(singular).theta()
    with pytest.raises(ArithmeticError, match=r"^design matrix is not positive definite$"):
        LinUCB.from_dict({**_state(), "a": [[-1.0, 0.0], [0.0, 1.0]]}).theta()


@pytest.mark.parametrize(
    ("contexts", "message"),
    [
        (np.ones(2), r"^contexts must have shape \(n, 2\), got \(2,\)$"),
        (np.ones((3, 3)), r"^contexts must have shape \(n, 2\), got \(3, 3\)$"),
        (np.ones((1, 2), dtype=np.float32), r"^contexts must be float64, got float32$"),
        (np.array([[1.0, math.nan]]), r"^contexts must be finite$"),
    ],
)
def test_contexts_are_checked_by_name(contexts: np.ndarray, message: str) -> None:
    bandit = LinUCB(LinUCBConfig(dim=2))
    with pytest.raises(ValueError, match=message):
        bandit.scores(contexts)
    with pytest.raises(ValueError, match=message):
        bandit.update(contexts, [1.0] * max(1, len(contexts)))


def test_update_messages_and_round_rules() -> None:
    bandit = LinUCB(LinUCBConfig(dim=1))
    x = np.ones((2, 1))
    with pytest.raises(ValueError, match=r"^2 contexts but rewards of shape \(3,\)$"):
        bandit.update(x, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"^2 contexts but rewards of shape \(1, 2\)$"):
        bandit.update(x, np.ones((1, 2)))
    with pytest.raises(
        ValueError, match=r"^rewards must be finite \(report missing rewards by leaving them out\)$"
    ):
        bandit.update(x, [1.0, math.inf])
    for bad in (-1, True, 1.0):
        with pytest.raises(ValueError, match=rf"^round must be a non-negative int, got {bad!r}$"):
            bandit.update(x, [1.0, 2.0], round=bad)  # type: ignore[arg-type]
    bandit.update(x, [1.0, 2.0], round=0)  # round 0 is a round
    assert bandit.last_round == 0
    with pytest.raises(ValueError, match=r"^round 0 is not after the last observed round 0$"):
        bandit.update(x, [1.0, 2.0], round=0)
    bandit.update(x, [1.0, 2.0])  # no round given: the last one stays
    assert bandit.last_round == 0
    bandit.update(x, [1.0, 2.0], round=1)
    assert (bandit.last_round, bandit.n_batches, bandit.n_obs) == (1, 3, 6)


@pytest.mark.parametrize("ridge", [2.0, 3.0, 0.7])
def test_the_cholesky_diagonal_is_a_square_root(ridge: float) -> None:
    """d = 1: L = [sqrt(a)], L^-1 = [1 / sqrt(a)] to the bit (for these ``a``, ``a / sqrt(a)`` is
    another double: the factor must take the root, not a quotient)."""
    _, linv, _ = LinUCB(LinUCBConfig(dim=1, ridge=ridge)).scoring_factors()
    assert linv.tolist() == [[1.0 / math.sqrt(ridge)]]
    two = LinUCB(LinUCBConfig(dim=2, ridge=ridge))
    assert two.scoring_factors()[1].tolist() == [[1.0 / math.sqrt(ridge), 0.0], [0.0, 1.0 / math.sqrt(ridge)]]


def test_loaded_integer_arrays_and_integer_rewards_are_floats() -> None:
    state = {**_state(), "a": [[2, 2], [2, 6]], "b": [3, 7], "ctx_sum": [1, 3]}
    bandit = LinUCB.from_dict(state)
    assert [a.dtype for a in (bandit.a, bandit.b, bandit.ctx_sum)] == [np.float64] * 3
    bandit.update(np.array([[0.5, 0.25]]), [1], round=5)  # in-place float updates must work
    assert bandit.a.tolist() == [[2.25, 2.125], [2.125, 6.0625]]
    huge = LinUCB(LinUCBConfig(dim=1))
    huge.update(np.ones((1, 1)), [2**70])  # an int beyond int64 is still a float reward
    assert huge.reward_mean == 2.0**70
    assert huge.b.tolist() == [2.0**70]


def test_state_digest_of_a_fresh_bandit_by_hand() -> None:
    bandit = LinUCB(LinUCBConfig(dim=1, ridge=2.0))
    parts = [
        b"knexa.linucb.state.v1\x00",
        struct.pack("<qqqqq", 1, 1, 0, 0, -1),
        struct.pack("<dd", 0.0, 0.0),
    ]
    for arr in (np.array([[2.0]]), np.array([0.0]), np.array([0.0])):
        parts.append(b"f8" + struct.pack("<q", arr.ndim) + b"".join(struct.pack("<q", k) for k in arr.shape))
        parts.append(arr.astype("<f8").tobytes())
    assert bandit.state_digest() == hashlib.sha256(b"".join(parts)).hexdigest()


def test_discount_keeps_the_prior_for_any_ridge() -> None:
    """ridge 4, gamma 0.5: A = 0.5 * 4I + (1 - 0.5) * 4 I = 4I; b and s halve."""
    bandit = LinUCB(LinUCBConfig(dim=2, ridge=4.0, discount=0.5))
    bandit.update(np.zeros((0, 2)), [])
    assert bandit.a.tolist() == [[4.0, 0.0], [0.0, 4.0]]
    bandit.update(np.array([[2.0, 0.0]]), [1.0])
    bandit.update(np.zeros((0, 2)), [])
    assert bandit.a.tolist() == [[6.0, 0.0], [0.0, 4.0]]  # 0.5 * (4 + 4) + 2, 0.5 * 4 + 2
    assert bandit.b.tolist() == [1.0, 0.0]
    assert bandit.ctx_sum.tolist() == [1.0, 0.0]


def test_an_undiscounted_update_leaves_every_bit_of_the_state() -> None:
    """gamma = 1 touches nothing: not even the sign of a zero (the state digest is over the bytes)."""
    state = {**_state(), "a": [[2.0, -0.0], [-0.0, 2.0]], "b": [-0.0, 1.0], "ctx_sum": [-0.0, 0.0]}
    bandit = LinUCB.from_dict(state)
    bandit.update(np.zeros((0, 2)), [], round=5)
    assert [
        math.copysign(1.0, v) for v in (bandit.a[0, 1], bandit.a[1, 0], bandit.b[0], bandit.ctx_sum[0])
    ] == [-1.0] * 4
