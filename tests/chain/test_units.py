"""WAD fixed-point conversions (pure logic)."""

from __future__ import annotations

import math

import pytest

from chain.units import WAD, ether, from_wad, to_wad


@pytest.mark.parametrize(("value", "expected"), [(0.1, 10**17), (-0.25, -(WAD // 4)), (1.0, WAD), (0.0, 0)])
def test_to_wad_is_exact_for_short_decimals(value: float, expected: int) -> None:
    assert to_wad(value) == expected


def test_round_trip_is_close_and_non_finite_is_rejected() -> None:
    for value in (0.123456789, -0.987654321, 1e-12):
        assert math.isclose(from_wad(to_wad(value)), value, rel_tol=1e-15)
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="non-finite"):
            to_wad(bad)
    assert ether("0.01") == 10**16
