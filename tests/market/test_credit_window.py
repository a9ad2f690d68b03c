"""`market.parameters.decayed_credits`, the contract's pair-credit decay, on hand-computed values."""

from __future__ import annotations

from chain.units import WAD
from market.parameters import PairCreditWindow, decayed_credits


def test_credits_halve_per_report_of_the_pair_inside_the_window_and_reset_after_it() -> None:
    window = PairCreditWindow()
    steps = [(1, 4 * WAD // 10), (2, 4 * WAD // 10), (3, -WAD // 10), (4, 8 * WAD // 10), (11, 8 * WAD // 10)]
    credited = []
    for round_id, gain in steps:
        credits, window = decayed_credits(window, round_id, gain, window_rounds=10)
        credited.append(credits)
    # 0.4; 0.4 / 2; a loss credits nothing but counts as a repeat; 0.8 / 8; round 11 >= 1 + 10: new window
    assert credited == [4 * WAD // 10, 2 * WAD // 10, 0, WAD // 10, 8 * WAD // 10]
    assert window == PairCreditWindow(11, 1)


def test_a_colluding_pair_earns_less_than_two_wad_per_window() -> None:
    window, total = PairCreditWindow(), 0
    for round_id in range(1, 11):
        credits, window = decayed_credits(window, round_id, WAD, window_rounds=10)
        total += credits
    assert total == 2 * WAD - WAD // 2**9  # 1 + 1/2 + ... + 1/512
