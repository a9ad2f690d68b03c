"""Range checks shared by the protocol's value types (features, DP parameters)."""

from __future__ import annotations

import math

from market.errors import MarketValueError


def check_real(name: str, value: object, lo: float, hi: float) -> float:
    """`value` as a float, if it is a finite number (not a bool) within [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MarketValueError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or not lo <= v <= hi:
        raise MarketValueError(f"{name} must be finite and within [{lo}, {hi}], got {value!r}")
    return v


def check_int(name: str, value: object, lo: int, hi: int) -> int:
    """`value`, if it is an int (not a bool) within [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise MarketValueError(f"{name} must be an int within [{lo}, {hi}], got {value!r}")
    return value
