"""The reward a student reports for a round: the paper's Eq. 3.

``r = gamma * (L_pre - L_post) - delta * KB``: ``L`` is the student's mean per-token NLL of its
private validation reference solutions (`agent.agent.Agent.val_nll`), ``KB`` the size of the
bundle it learnt from in KiB (`agent.payload.BundlePayload.nbytes`, the part of a sealed bundle
that grows with its content). A continuous loss reduction repeats across replicates far better
than a Pass@1 change on a few dozen problems, which is why the market's bandit learns from it.

The benchmark (`sim.federation`) and the organization runtime (which reports it on chain as the
pair's gain, in WAD) compute it with this one function, so what the science measures is what the
market records. The contract bounds a reported gain to [-1, 1]; `eq3_reward` clips to that range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The contract's bound on a reported gain (``MAX_ABS_GAIN``, 1e18 in WAD).
MAX_ABS_REWARD = 1.0


@dataclass(frozen=True)
class RewardConfig:
    """``gamma`` weighs the loss reduction (nats), ``delta_per_kib`` charges the bundle's size."""

    gamma: float = 1.0
    delta_per_kib: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("gamma", "delta_per_kib"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")


def eq3_reward(
    nll_before: float, nll_after: float, bundle_kib: float, cfg: RewardConfig | None = None
) -> float:
    """``gamma * (nll_before - nll_after) - delta * bundle_kib``, clipped to [-1, 1].

    Raises ``ValueError`` for a non-finite loss (a model that produced NaN has nothing to report)
    or a negative size.
    """
    cfg = cfg or RewardConfig()
    if not (math.isfinite(nll_before) and math.isfinite(nll_after)):
        raise ValueError(f"validation losses must be finite, got {nll_before!r} -> {nll_after!r}")
    if not math.isfinite(bundle_kib) or bundle_kib < 0:
        raise ValueError(f"bundle size must be finite and >= 0, got {bundle_kib!r}")
    value = cfg.gamma * (nll_before - nll_after) - cfg.delta_per_kib * bundle_kib
    return max(-MAX_ABS_REWARD, min(MAX_ABS_REWARD, value))
