"""bench/market_scale.py at 8 organizations on a real Anvil: every phase ran, the JSON holds what
the README quotes, and the audit replay matched the round (never asserts timings)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "market_scale.py"
PHASES = ["keys", "start", "fund", "register", "open", "publish", "report", "settle", "replay"]


def test_small_market_round_replays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("bench_market_scale", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look their module up
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts the repository first
    spec.loader.exec_module(module)
    out = tmp_path / "market-scale.json"
    module.main(["--orgs", "8", "--out", str(out), "--no-plot"])
    data = json.loads(out.read_text())
    assert data["benchmark"] == "market-scale"
    assert data["orgs"] == 8
    assert data["pairs"] == 8  # every student matched
    assert data["reported"] == 8
    assert data["replay_matched"] is True
    phases = {row["name"]: row for row in data["phases"]}
    assert [row["name"] for row in data["phases"]] == PHASES
    assert phases["register"]["transactions"] == 8
    assert phases["publish"]["transactions"] == phases["report"]["transactions"] == 8
    assert phases["publish"]["pairs"] == 8
    assert phases["replay"]["verdicts"] == {"match": 1, "mismatch": 0, "unverifiable": 0}
    for name in ("register", "open", "publish", "report", "settle"):
        row = phases[name]
        assert 1 <= row["blocks"] <= row["transactions"]  # automine: concurrent sends may share a block
        assert 0 < row["gas_per_block_mean"] <= row["gas_per_block_max"] < data["block_gas_limit"]
    assert data["transactions"] == 8 + 1 + 8 + 8 + 1
    assert data["round_seconds"] > 0
    assert data["replay_seconds"] > 0
    assert data["parameters"]["max_pairs_per_round"] >= 8
