"""Fixed-point conversions between Python floats and the contracts' WAD (1e18) numbers."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

WAD = 10**18
MAX_ABS_GAIN_WAD = WAD


def to_wad(value: float) -> int:
    """`value` as a WAD integer, via its shortest decimal repr so 0.1 -> 10**17 exactly."""
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"cannot encode non-finite value {value!r} as a WAD number")
    scaled = Decimal(repr(value)) * WAD
    return int(scaled.to_integral_value(rounding=ROUND_HALF_EVEN))


def from_wad(value: int) -> float:
    """A WAD integer as a float64 (correctly rounded)."""
    return value / WAD


def ether(amount: float | int | str) -> int:
    """`amount` ether in wei."""
    return int(Decimal(str(amount)) * WAD)
