"""`knexa demo --processes`: Anvil, the matchmaker and three organizations as separate processes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from knexa.process_demo import run_process_demo


@pytest.mark.slow
def test_process_demo_runs_rounds_and_leaves_nothing_running(tmp_path: Path) -> None:
    report = run_process_demo(
        organizations=3, rounds=2, learner="synthetic", round_blocks=8, workdir=tmp_path
    )
    assert [verdict["verdict"] for verdict in report.verdicts] == ["match", "match"]
    assert [entry["round"] for entry in report.rounds] == [1, 2]
    for entry in report.rounds:
        assert len(entry["pairs"]) == 3
        for pair in entry["pairs"]:
            assert pair["bundle"] is not None  # every teacher process delivered
            assert pair["gain"] is not None  # every student process reported
    assert {org["name"] for org in report.organizations} == {"org-00000", "org-00001", "org-00002"}
    assert all(org["withdrawable_eth"] > 0 for org in report.organizations)
    assert (tmp_path / "logs" / "matchmaker.log").exists()
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False)
    assert leftovers.stdout.strip() == ""
