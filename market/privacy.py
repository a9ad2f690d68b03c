"""The client-side release of an organization's category histogram under differential privacy.

Differential privacy of the category histogram
----------------------------------------------
An agent holds ``n`` private problems; each is labelled with at most ``m`` of the ``K`` categories
(``max_labels_per_record``; ``m = 1`` for single-label data), at most once per category. The true
statistic is the count vector ``c in N^K``. Two datasets are *neighbours* when they differ in one
problem. The **sensitivity** of ``c`` is the largest change one problem can cause:

* add/remove adjacency (a problem is present or absent): one problem moves at most ``m`` counts
  by 1 each, so the L1 sensitivity is ``m`` and the L2 sensitivity is ``sqrt(m)``;
* replace-one adjacency (a problem is swapped for another): up to ``2m`` counts move by 1, so
  L1 = ``2m`` and L2 = ``sqrt(2m)``.

The Laplace mechanism adds i.i.d. ``Laplace(0, Delta_1 / epsilon)`` noise to each count and is
``(epsilon, 0)``-DP. The Gaussian mechanism adds ``N(0, sigma^2)`` with ``sigma`` calibrated by the
*analytic* Gaussian mechanism (Balle & Wang, ICML 2018: the smallest ``sigma`` for which the
privacy-loss tail bound holds exactly), valid for every ``epsilon > 0``, unlike the classical
``sigma = Delta_2 sqrt(2 ln(1.25/delta)) / epsilon`` that is only proven for ``epsilon <= 1`` (and
is always at least as large). The noisy counts are then **post-processed**: clipped to ``>= 0``
and normalised to sum to 1 (uniform if everything clipped to zero). Post-processing never weakens
DP, and the histogram's total (which would reveal ``n``) is not released.

Budget: every release is charged to a `PrivacyAccountant` under basic sequential composition
(epsilons add, deltas add). That bound is conservative; it is what the profile document records.
A release that would exceed the accountant's budget is refused before any noise is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.special import log_ndtr, ndtr

from market.categories import DEFAULT_CATEGORIES, check_categories
from market.checks import check_int, check_real
from market.errors import MarketValueError, PrivacyBudgetExceededError

Mechanism = Literal["laplace", "gaussian"]
Adjacency = Literal["add_remove", "replace"]

__all__ = [
    "HistogramRelease",
    "PrivacyAccountant",
    "PrivacyBudgetExceededError",
    "release_histogram",
    "size_bucket_of",
]


def size_bucket_of(n_params: int) -> int:
    """Coarse size bucket: ``round(log2(n_params / 1e8))``; a bucket ``b`` means ``~1e8 * 2**b`` parameters.

    Buckets are integers so that the pair context's log size ratio ``(b_t - b_s) * ln 2`` is exact.
    """
    if isinstance(n_params, bool) or not isinstance(n_params, int) or n_params <= 0:
        raise MarketValueError(f"n_params must be a positive int, got {n_params!r}")
    return round(math.log2(n_params / 1e8))


def sensitivities(max_labels_per_record: int = 1, adjacency: Adjacency = "add_remove") -> tuple[float, float]:
    """(L1, L2) sensitivity of a category-count vector; see the module docstring."""
    m = check_int("max_labels_per_record", max_labels_per_record, 1, 1 << 20)
    if adjacency == "add_remove":
        return float(m), math.sqrt(m)
    if adjacency == "replace":
        return float(2 * m), math.sqrt(2 * m)
    raise MarketValueError(f"unknown adjacency {adjacency!r}")


def laplace_scale(epsilon: float, l1_sensitivity: float) -> float:
    """Scale ``b = Delta_1 / epsilon`` of the Laplace mechanism; the noise std is ``sqrt(2) * b``."""
    check_real("epsilon", epsilon, 1e-12, math.inf)
    check_real("l1_sensitivity", l1_sensitivity, 1e-12, math.inf)
    return l1_sensitivity / epsilon


def classical_gaussian_sigma(epsilon: float, delta: float, l2_sensitivity: float) -> float:
    """The classical bound ``Delta_2 sqrt(2 ln(1.25/delta)) / epsilon`` (proven for epsilon <= 1)."""
    return l2_sensitivity * math.sqrt(2.0 * math.log(1.25 / delta)) / epsilon


def _gaussian_delta(sigma: float, epsilon: float, l2: float) -> float:
    """The exact delta of the Gaussian mechanism with noise ``sigma`` at ``epsilon`` (Balle & Wang, Thm 8)."""
    a = l2 / (2.0 * sigma)
    b = epsilon * sigma / l2
    return float(ndtr(a - b)) - math.exp(epsilon + float(log_ndtr(-a - b)))


def gaussian_sigma(epsilon: float, delta: float, l2_sensitivity: float) -> float:
    """Smallest ``sigma`` for which ``N(0, sigma^2)`` noise is ``(epsilon, delta)``-DP (analytic Gaussian).

    Found by bisection on the exact privacy profile, which is decreasing in ``sigma``; the
    returned value is the upper end of the final bracket, so the guarantee always holds.
    """
    check_real("epsilon", epsilon, 1e-12, math.inf)
    check_real("delta", delta, 1e-300, 1.0 - 1e-12)
    check_real("l2_sensitivity", l2_sensitivity, 1e-12, math.inf)
    lo, hi = l2_sensitivity * 1e-6, l2_sensitivity
    while _gaussian_delta(hi, epsilon, l2_sensitivity) > delta:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _gaussian_delta(mid, epsilon, l2_sensitivity) > delta:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return hi


@dataclass
class PrivacyAccountant:
    """Cumulative privacy spending of one organization under basic sequential composition.

    ``epsilon_budget``/``delta_budget`` of ``None`` mean unlimited (the spending is still recorded).
    """

    epsilon_budget: float | None = None
    delta_budget: float | None = None
    epsilon_spent: float = 0.0
    delta_spent: float = 0.0
    releases: int = 0
    history: list[tuple[str, float, float]] = field(default_factory=list)

    def check(self, epsilon: float, delta: float) -> None:
        """Raise `PrivacyBudgetExceededError` if spending ``(epsilon, delta)`` would exceed the budget."""
        if self.epsilon_budget is not None and self.epsilon_spent + epsilon > self.epsilon_budget * (
            1 + 1e-12
        ):
            raise PrivacyBudgetExceededError(
                f"epsilon budget {self.epsilon_budget} would be exceeded: "
                f"spent {self.epsilon_spent} + {epsilon}"
            )
        if self.delta_budget is not None and self.delta_spent + delta > self.delta_budget * (1 + 1e-12):
            raise PrivacyBudgetExceededError(
                f"delta budget {self.delta_budget} would be exceeded: spent {self.delta_spent} + {delta}"
            )

    def charge(self, label: str, epsilon: float, delta: float) -> None:
        """Record a release (after `check`)."""
        self.check(epsilon, delta)
        self.epsilon_spent += epsilon
        self.delta_spent += delta
        self.releases += 1
        self.history.append((label, epsilon, delta))


@dataclass(frozen=True)
class HistogramRelease:
    """One DP release of a category histogram, with its privacy accounting."""

    categories: tuple[str, ...]
    histogram: tuple[float, ...]
    mechanism: Mechanism
    epsilon: float
    delta: float
    adjacency: Adjacency
    l1_sensitivity: float
    l2_sensitivity: float
    noise_scale: float
    epsilon_spent_total: float
    delta_spent_total: float
    releases_total: int

    def dp_record(self) -> dict[str, Any]:
        """The privacy fields a profile document records."""
        return {
            "mechanism": self.mechanism,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "adjacency": self.adjacency,
            "l1_sensitivity": self.l1_sensitivity,
            "l2_sensitivity": self.l2_sensitivity,
            "noise_scale": self.noise_scale,
            "epsilon_spent_total": self.epsilon_spent_total,
            "delta_spent_total": self.delta_spent_total,
            "releases_total": self.releases_total,
        }


def _counts_vector(
    counts: Mapping[str, int] | Sequence[int], categories: tuple[str, ...]
) -> NDArray[np.float64]:
    if isinstance(counts, Mapping):
        unknown = set(counts) - set(categories)
        if unknown:
            raise MarketValueError(f"counts for unknown categories: {sorted(unknown)}")
        values = [counts.get(c, 0) for c in categories]
    else:
        values = list(counts)
        if len(values) != len(categories):
            raise MarketValueError(f"{len(values)} counts for {len(categories)} categories")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise MarketValueError(f"counts must be non-negative integers, got {v!r}")
    return np.asarray(values, dtype=np.float64)


def noise_scale(
    mechanism: Mechanism, epsilon: float, delta: float, l1_sensitivity: float, l2_sensitivity: float
) -> float:
    """Laplace scale ``b`` or Gaussian ``sigma`` for the given privacy parameters."""
    if mechanism == "laplace":
        if delta != 0.0:
            raise MarketValueError("the Laplace mechanism is (epsilon, 0)-DP: delta must be 0")
        return laplace_scale(epsilon, l1_sensitivity)
    if mechanism == "gaussian":
        return gaussian_sigma(epsilon, delta, l2_sensitivity)
    raise MarketValueError(f"unknown mechanism {mechanism!r}")


def noisy_counts(
    counts: NDArray[np.float64], mechanism: Mechanism, scale: float, rng: np.random.Generator
) -> NDArray[np.float64]:
    """The raw mechanism output: ``counts`` plus i.i.d. Laplace(0, scale) or N(0, scale^2) noise."""
    if mechanism == "laplace":
        return counts + rng.laplace(0.0, scale, size=counts.shape)
    return counts + rng.normal(0.0, scale, size=counts.shape)


def postprocess(noisy: NDArray[np.float64]) -> NDArray[np.float64]:
    """Clip to >= 0 and normalise to sum 1 (uniform when every entry clipped to 0)."""
    clipped = np.maximum(noisy, 0.0)
    total = float(clipped.sum())
    if total <= 0.0:
        return np.full(noisy.shape, 1.0 / noisy.size)
    return clipped / total


def release_histogram(
    counts: Mapping[str, int] | Sequence[int],
    *,
    rng: np.random.Generator,
    accountant: PrivacyAccountant,
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    mechanism: Mechanism = "laplace",
    epsilon: float = 1.0,
    delta: float = 0.0,
    max_labels_per_record: int = 1,
    adjacency: Adjacency = "add_remove",
) -> HistogramRelease:
    """Release a category-count histogram with DP; charge ``accountant``; see the module docstring.

    Invalid input or an exhausted budget raises before any noise is drawn (``rng`` and
    ``accountant`` are then unchanged).
    """
    cats = check_categories(categories)
    c = _counts_vector(counts, cats)
    l1, l2 = sensitivities(max_labels_per_record, adjacency)
    scale = noise_scale(mechanism, epsilon, delta, l1, l2)
    accountant.check(epsilon, delta)
    hist = postprocess(noisy_counts(c, mechanism, scale, rng))
    accountant.charge("category_hist", epsilon, delta)
    return HistogramRelease(
        categories=cats,
        histogram=tuple(float(h) for h in hist),
        mechanism=mechanism,
        epsilon=float(epsilon),
        delta=float(delta),
        adjacency=adjacency,
        l1_sensitivity=l1,
        l2_sensitivity=l2,
        noise_scale=scale,
        epsilon_spent_total=accountant.epsilon_spent,
        delta_spent_total=accountant.delta_spent,
        releases_total=accountant.releases,
    )
