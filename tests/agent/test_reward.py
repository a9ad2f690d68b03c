"""The Eq. 3 reward: hand-computed values, the contract's bound, bad inputs."""

from __future__ import annotations

import math

import pytest

from agent.reward import MAX_ABS_REWARD, RewardConfig, eq3_reward


def test_eq3_is_loss_reduction_less_the_size_charge() -> None:
    assert eq3_reward(1.25, 1.0, 0.0) == 0.25
    assert eq3_reward(1.25, 1.0, 1000.0) == 0.25 - 1e-5 * 1000.0
    assert eq3_reward(1.0, 1.25, 10.0, RewardConfig(gamma=2.0, delta_per_kib=0.01)) == 2.0 * -0.25 - 0.1


def test_eq3_is_clipped_to_the_contracts_bound() -> None:
    assert eq3_reward(9.0, 1.0, 0.0) == MAX_ABS_REWARD
    assert eq3_reward(1.0, 9.0, 0.0) == -MAX_ABS_REWARD


@pytest.mark.parametrize(
    ("before", "after", "kib"),
    [
        (math.nan, 1.0, 0.0),
        (1.0, math.inf, 0.0),
        (1.0, 1.0, -1.0),
        (1.0, 1.0, math.nan),
        (1.0, 1.0, math.inf),
    ],
)
def test_eq3_refuses_what_has_nothing_to_report(before: float, after: float, kib: float) -> None:
    with pytest.raises(ValueError, match="must be finite"):
        eq3_reward(before, after, kib)


@pytest.mark.parametrize("bad", [{"gamma": -1.0}, {"delta_per_kib": math.inf}, {"gamma": True}])
def test_reward_config_is_checked(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        RewardConfig(**bad)
