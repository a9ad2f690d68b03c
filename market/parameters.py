"""The contract's parameters and constants, read from the contract and never retyped.

`MarketConstants` holds what the contract fixes at compile time (the WAD scale, a new
organization's reputation); `reputation_ema` is the contract's reputation update, written once
here for simulations that must follow the market's rule (a test checks it against the contract).
"""

from __future__ import annotations

from dataclasses import dataclass

from chain.client import DEFAULT_PARAMETERS, MarketClient, MarketParameters
from chain.errors import ChainError
from market.errors import ParametersError

__all__ = [
    "DEFAULT_PARAMETERS",
    "MarketConstants",
    "MarketParameters",
    "PairCreditWindow",
    "decayed_credits",
    "read_constants",
    "reputation_ema",
]

BPS = 10_000


@dataclass(frozen=True)
class MarketConstants:
    """Compile-time constants of the deployed contract (WAD-scaled)."""

    wad: int
    initial_reputation: int


def read_constants(market: MarketClient) -> MarketConstants:
    """The constants of the deployed market, read from the contract itself."""
    try:
        functions = market.contract.functions
        return MarketConstants(
            wad=int(market.call(functions.WAD())),
            initial_reputation=int(market.call(functions.INITIAL_REPUTATION())),
        )
    except ChainError as error:
        raise ParametersError(f"cannot read the market's constants: {error}") from error


def reputation_ema(old: int, signal: int, weight_bps: int) -> int:
    """The contract's reputation update: integer EMA with the newest signal weighted `weight_bps`."""
    if not 0 < weight_bps <= BPS:
        raise ParametersError(f"reputation weight must be in (0, {BPS}] basis points, got {weight_bps}")
    return (old * (BPS - weight_bps) + signal * weight_bps) // BPS


@dataclass(frozen=True)
class PairCreditWindow:
    """A directed pair's credit window, as the contract keeps it: where it started, reports since."""

    start_round: int = 0
    repeats: int = 0


def decayed_credits(
    window: PairCreditWindow, round_id: int, gain_wad: int, window_rounds: int
) -> tuple[int, PairCreditWindow]:
    """The contract's `_decayedCredits`: a report's credits for the teacher, and the pair's new window.

    A positive gain credits ``gain >> repeats`` (halved per earlier report of the same directed pair
    inside ``window_rounds``); every report counts as a repeat, whatever its gain, so a colluding
    and an honest pair decay alike (credits of one pair per window < 2 WAD).
    """
    if window.repeats == 0 or round_id >= window.start_round + window_rounds:
        window = PairCreditWindow(round_id, 0)
    credits = gain_wad >> window.repeats if gain_wad > 0 and window.repeats < 64 else 0
    return credits, PairCreditWindow(window.start_round, window.repeats + 1)
