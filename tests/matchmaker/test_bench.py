"""Smoke run of bench/matchmaker.py in quick mode (never asserts timings)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.bench_scripts import load_bench


def test_quick_bench_writes_json(tmp_path: Path) -> None:
    module = load_bench("matchmaker")
    assert (
        module.main(["--quick", "--out", str(tmp_path), "--rounds", "5", "--timing-sizes", "10", "30"]) == 0
    )
    data = json.loads((tmp_path / "matchmaker.json").read_text())
    assert data["quick"] is True
    assert set(data["regret"]["8"]) >= {"linucb", "heuristic", "random"}
    assert len(data["regret"]["8"]["linucb"]["cumulative_regret_mean"]) == 5
    assert [r["n"] for r in data["timing"]] == [10, 30]
