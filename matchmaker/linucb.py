"""LinUCB over directed-pair contexts: float64, pure, and bit-reproducible.

Model (one shared parameter vector for all arms, so what is learnt about one pair transfers to
pairs never tried, including organizations that join later)::

    A = lambda * I + sum_i x_i x_i^T          b = sum_i r_i x_i        s = sum_i x_i
    z-scored rewards: mu, sigma = running mean / sample std of all rewards so far (Welford)
    theta = A^-1 (b - mu * s) / sigma          (= ridge solution on (r_i - mu) / sigma, exactly)
    mean(x) = theta . x    bonus(x) = sqrt(x^T A^-1 x)    ucb(x) = mean(x) + beta_t * bonus(x)

The normalisation uses the *current* mu and sigma for the whole history (the sufficient statistics
``b`` and ``s`` make that exact), so the scores do not depend on when a reward arrived, and
``beta`` is in units of reward standard deviations.

Order of operations (this is the contract a replay relies on):

* `update` processes the rows of a batch in the given order; for each row ``x, r``:
  ``A += outer(x, x)``; ``b += r * x``; ``s += x``; Welford ``n += 1; delta = r - mean;
  mean += delta / n; m2 += delta * (r - mean)``. Then ``n_batches += 1`` and ``last_round = round``.
* Derived quantities are recomputed from ``A`` (never updated incrementally, so no drift): a
  Cholesky factor ``A = L L^T`` and ``L^-1`` computed in pure Python float arithmetic with every
  sum taken in ascending index order, then ``theta = L^-T (L^-1 c)`` with ``c = (b - mu s) / sigma``.
* `scores`: ``mean = sum_j x_j theta_j`` accumulated for ``j = 0..d-1``; ``z_i = sum_{j<=i}
  Linv[i, j] x_j`` accumulated for ``j = 0..i``; ``q = sum_i z_i^2`` for ``i = 0..d-1``;
  ``bonus = sqrt(q)``; ``ucb = mean + beta * bonus``.

No BLAS/LAPACK call is on this path: their kernels are chosen per CPU (FMA, blocking, threads)
and may round differently on another machine. Everything here is element-wise IEEE-754 ``+ - * /
sqrt`` (correctly rounded) in a fixed order, so the same history gives the same bits anywhere.
`scores` works in blocks of arms for speed; the block size does not change any result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Context, Decimal
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

from matchmaker.canonical import canonical_json, pack_array, pack_float, pack_int, sha256_hex

BetaSchedule = Literal["constant", "sqrt_log", "inverse_sqrt"]
FloatArray = NDArray[np.float64]
STATE_VERSION = 1
_DIGEST_TAG = b"knexa.linucb.state.v1\x00"
_SCORE_BLOCK = 65536
_LN_CONTEXT = Context(prec=40)


class Scores(NamedTuple):
    """Per-arm posterior mean, exploration bonus (before ``beta``) and UCB score."""

    mean: FloatArray
    bonus: FloatArray
    ucb: FloatArray


@dataclass(frozen=True)
class LinUCBConfig:
    """Hyper-parameters. ``beta_t`` with ``t`` = number of update batches (rounds observed):

    * ``constant``: ``beta0``;
    * ``sqrt_log``: ``beta0 * sqrt(1 + ln(1 + t))`` (slowly growing, as in LinUCB's confidence
      bound; ``ln`` is computed with ``decimal`` so it is exact to the last bit everywhere);
    * ``inverse_sqrt``: ``beta0 / sqrt(1 + t / beta_tau)`` (decaying exploration).

    ``discount`` ``gamma < 1`` makes a discounted LinUCB for drifting pair values: at the start
    of every update batch ``A = gamma * A + (1 - gamma) * ridge * I`` (so the prior never fades),
    ``b = gamma * b``, ``s = gamma * s``, element-wise in that order; the reward statistics are
    not discounted. ``1.0`` (the default) is the undiscounted bandit, bit for bit.
    """

    dim: int
    ridge: float = 1.0
    beta0: float = 1.0
    beta_schedule: BetaSchedule = "constant"
    beta_tau: float = 20.0
    normalise_rewards: bool = True
    discount: float = 1.0

    def __post_init__(self) -> None:
        if (
            isinstance(self.discount, bool)
            or not isinstance(self.discount, (int, float))
            or not 0.0 < self.discount <= 1.0
        ):
            raise ValueError(f"discount must be in (0, 1], got {self.discount!r}")
        object.__setattr__(self, "discount", float(self.discount))
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or not 1 <= self.dim <= 512:
            raise ValueError(f"dim must be an int in [1, 512], got {self.dim!r}")
        for name in ("ridge", "beta_tau"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a finite positive number, got {v!r}")
        if not isinstance(self.beta0, (int, float)) or not math.isfinite(self.beta0) or self.beta0 < 0:
            raise ValueError(f"beta0 must be finite and >= 0, got {self.beta0!r}")
        if self.beta_schedule not in ("constant", "sqrt_log", "inverse_sqrt"):
            raise ValueError(f"unknown beta_schedule {self.beta_schedule!r}")
        object.__setattr__(self, "ridge", float(self.ridge))
        object.__setattr__(self, "beta0", float(self.beta0))
        object.__setattr__(self, "beta_tau", float(self.beta_tau))

    def beta(self, t: int) -> float:
        """Exploration weight after ``t`` update batches."""
        if self.beta_schedule == "constant":
            return self.beta0
        if self.beta_schedule == "sqrt_log":
            ln = float(Decimal(1 + t).ln(_LN_CONTEXT))
            return self.beta0 * math.sqrt(1.0 + ln)
        return self.beta0 / math.sqrt(1.0 + t / self.beta_tau)


def _config_dict(config: LinUCBConfig) -> dict[str, Any]:
    """The config as a dict; ``discount`` only when set (older states keep their bytes)."""
    d = asdict(config)
    if d["discount"] == 1.0:
        del d["discount"]
    return d


def _cholesky_inverse_factor(a: list[list[float]]) -> list[list[float]]:
    """``L^-1`` (lower triangular) for ``A = L L^T``, in plain Python floats, ascending-index sums."""
    d = len(a)
    low = [[0.0] * d for _ in range(d)]
    for j in range(d):
        acc = a[j][j]
        for k in range(j):
            acc -= low[j][k] * low[j][k]
        if not acc > 0.0:
            raise ArithmeticError("design matrix is not positive definite")
        diag = math.sqrt(acc)
        low[j][j] = diag
        for i in range(j + 1, d):
            acc = a[i][j]
            for k in range(j):
                acc -= low[i][k] * low[j][k]
            low[i][j] = acc / diag
    inv = [[0.0] * d for _ in range(d)]
    for i in range(d):
        inv[i][i] = 1.0 / low[i][i]
        for j in range(i):
            acc = 0.0
            for k in range(j, i):
                acc += low[i][k] * inv[k][j]
            inv[i][j] = -acc / low[i][i]
    return inv


def score_contexts(
    x: FloatArray, theta: FloatArray, linv: FloatArray, beta: float, *, block: int = _SCORE_BLOCK
) -> Scores:
    """The reference scoring (numpy, column by column, in the documented order of operations)."""
    n, d = x.shape
    mean = np.empty(n, dtype=np.float64)
    bonus = np.empty(n, dtype=np.float64)
    th = theta.tolist()
    li = linv.tolist()
    for start in range(0, n, block):
        stop = min(n, start + block)
        cols = [np.ascontiguousarray(x[start:stop, j]) for j in range(d)]
        m = cols[0] * th[0]
        for j in range(1, d):
            m += cols[j] * th[j]
        tmp = np.empty(stop - start, dtype=np.float64)
        q = np.zeros(stop - start, dtype=np.float64)
        for i in range(d):
            z = cols[0] * li[i][0]
            for j in range(1, i + 1):
                np.multiply(cols[j], li[i][j], out=tmp)
                z += tmp
            np.multiply(z, z, out=tmp)
            q += tmp
        mean[start:stop] = m
        bonus[start:stop] = np.sqrt(q)
    return Scores(mean, bonus, mean + beta * bonus)


class LinUCB:
    """The bandit: a pure function of the ordered history of ``update`` calls."""

    def __init__(self, config: LinUCBConfig) -> None:
        self.config = config
        d = config.dim
        self.a: FloatArray = np.eye(d, dtype=np.float64) * config.ridge
        self.b: FloatArray = np.zeros(d, dtype=np.float64)
        self.ctx_sum: FloatArray = np.zeros(d, dtype=np.float64)
        self.n_obs = 0
        self.n_batches = 0
        self.last_round: int | None = None
        self.reward_mean = 0.0
        self.reward_m2 = 0.0
        self._cache: tuple[FloatArray, FloatArray] | None = None

    # ------------------------------------------------------------------ derived quantities

    @property
    def dim(self) -> int:
        return self.config.dim

    def reward_stats(self) -> tuple[float, float]:
        """``(mu, sigma)`` used to z-score rewards; ``(0, 1)`` when disabled or too few rewards."""
        if not self.config.normalise_rewards or self.n_obs == 0:
            return 0.0, 1.0
        if self.n_obs < 2 or not self.reward_m2 > 0.0:
            return self.reward_mean, 1.0
        return self.reward_mean, math.sqrt(self.reward_m2 / (self.n_obs - 1))

    def beta(self) -> float:
        return self.config.beta(self.n_batches)

    def _derived(self) -> tuple[FloatArray, FloatArray]:
        if self._cache is None:
            d = self.dim
            linv = _cholesky_inverse_factor(self.a.tolist())
            mu, sigma = self.reward_stats()
            c = [(self.b[j].item() - mu * self.ctx_sum[j].item()) / sigma for j in range(d)]
            w = [0.0] * d  # w = Linv c
            for i in range(d):
                acc = 0.0
                for j in range(i + 1):
                    acc += linv[i][j] * c[j]
                w[i] = acc
            theta = [0.0] * d  # theta = Linv^T w
            for j in range(d):
                acc = 0.0
                for i in range(j, d):
                    acc += linv[i][j] * w[i]
                theta[j] = acc
            self._cache = (np.array(theta, dtype=np.float64), np.array(linv, dtype=np.float64))
        return self._cache

    def theta(self) -> FloatArray:
        """Current parameter vector (in z-scored reward units)."""
        return self._derived()[0].copy()

    def a_inverse(self) -> FloatArray:
        """``A^-1 = L^-T L^-1`` (for inspection and tests; not used for scoring)."""
        linv = self._derived()[1]
        return linv.T @ linv

    # ------------------------------------------------------------------ scoring and learning

    def _check_contexts(self, contexts: FloatArray) -> FloatArray:
        x = np.asarray(contexts)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"contexts must have shape (n, {self.dim}), got {x.shape}")
        if x.dtype != np.float64:
            raise ValueError(f"contexts must be float64, got {x.dtype}")
        if not np.isfinite(x).all():
            raise ValueError("contexts must be finite")
        return x

    def scoring_factors(self) -> tuple[FloatArray, FloatArray, float]:
        """``(theta, L^-1, beta)``: everything `scores` uses (copies; for the compiled kernels)."""
        theta, linv = self._derived()
        return theta.copy(), linv.copy(), self.beta()

    def scores(self, contexts: FloatArray, *, block: int = _SCORE_BLOCK) -> Scores:
        """``(mean, bonus, ucb)`` for every row of ``contexts`` (n, d); vectorised, block by block."""
        x = self._check_contexts(contexts)
        theta, linv = self._derived()
        return score_contexts(x, theta, linv, self.beta(), block=block)

    def update(
        self, contexts: FloatArray, rewards: Sequence[float] | FloatArray, *, round: int | None = None
    ) -> None:
        """Learn from one round's observed (context, reward) rows, in the given order.

        Call it once per finalized round, also with zero rows (all reports missing): a batch
        advances the ``beta`` schedule. ``round`` (if given) must increase from call to call.
        Invalid input raises ``ValueError`` and leaves the state unchanged.
        """
        x = self._check_contexts(contexts)
        r = np.asarray(rewards, dtype=np.float64)
        if r.ndim != 1 or len(r) != len(x):
            raise ValueError(f"{len(x)} contexts but rewards of shape {r.shape}")
        if not np.isfinite(r).all():
            raise ValueError("rewards must be finite (report missing rewards by leaving them out)")
        if round is not None:
            if isinstance(round, bool) or not isinstance(round, int) or round < 0:
                raise ValueError(f"round must be a non-negative int, got {round!r}")
            if self.last_round is not None and round <= self.last_round:
                raise ValueError(f"round {round} is not after the last observed round {self.last_round}")
        gamma = self.config.discount
        if gamma != 1.0:
            self.a *= gamma
            self.a += np.eye(self.dim, dtype=np.float64) * ((1.0 - gamma) * self.config.ridge)
            self.b *= gamma
            self.ctx_sum *= gamma
        for i in range(len(x)):
            xi = np.ascontiguousarray(x[i])
            ri = r[i].item()
            self.a += xi[:, None] * xi[None, :]
            self.b += ri * xi
            self.ctx_sum += xi
            self.n_obs += 1
            delta = ri - self.reward_mean
            self.reward_mean += delta / self.n_obs
            self.reward_m2 += delta * (ri - self.reward_mean)
        self.n_batches += 1
        if round is not None:
            self.last_round = round
        self._cache = None

    # ------------------------------------------------------------------ state

    def state_digest(self) -> str:
        """sha256 over a canonical byte encoding of the state (arrays, counters, reward stats).

        The config is not included: it is committed separately as the policy digest.
        """
        parts = [
            _DIGEST_TAG,
            pack_int(STATE_VERSION),
            pack_int(self.dim),
            pack_int(self.n_obs),
            pack_int(self.n_batches),
            pack_int(-1 if self.last_round is None else self.last_round),
            pack_float(self.reward_mean),
            pack_float(self.reward_m2),
            pack_array(self.a),
            pack_array(self.b),
            pack_array(self.ctx_sum),
        ]
        return sha256_hex(b"".join(parts))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able state; floats are written by ``repr`` and so round-trip exactly."""
        return {
            "version": STATE_VERSION,
            "config": _config_dict(self.config),
            "a": self.a.tolist(),
            "b": self.b.tolist(),
            "ctx_sum": self.ctx_sum.tolist(),
            "n_obs": self.n_obs,
            "n_batches": self.n_batches,
            "last_round": self.last_round,
            "reward_mean": self.reward_mean,
            "reward_m2": self.reward_m2,
        }

    def to_json(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinUCB:
        """Exact inverse of `to_dict`; validates shapes, types and finiteness."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported LinUCB state version {data.get('version')!r}")
        cfg = data.get("config")
        if not isinstance(cfg, dict):
            raise ValueError("LinUCB state lacks its config")
        bandit = cls(LinUCBConfig(**cfg))
        d = bandit.dim
        a = np.array(data["a"], dtype=np.float64)
        b = np.array(data["b"], dtype=np.float64)
        s = np.array(data["ctx_sum"], dtype=np.float64)
        if a.shape != (d, d) or b.shape != (d,) or s.shape != (d,):
            raise ValueError("LinUCB state arrays have the wrong shape")
        if not (np.isfinite(a).all() and np.isfinite(b).all() and np.isfinite(s).all()):
            raise ValueError("LinUCB state arrays must be finite")
        for name in ("n_obs", "n_batches"):
            v = data[name]
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative int")
        last = data["last_round"]
        if last is not None and (isinstance(last, bool) or not isinstance(last, int)):
            raise ValueError("last_round must be an int or null")
        mean, m2 = float(data["reward_mean"]), float(data["reward_m2"])
        if not (math.isfinite(mean) and math.isfinite(m2)):
            raise ValueError("reward statistics must be finite")
        bandit.a, bandit.b, bandit.ctx_sum = a, b, s
        bandit.n_obs, bandit.n_batches, bandit.last_round = data["n_obs"], data["n_batches"], last
        bandit.reward_mean, bandit.reward_m2 = mean, m2
        return bandit

    def copy(self) -> LinUCB:
        return LinUCB.from_dict(self.to_dict())
