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
    # org-00000 sealed its round-1 bundle to the wrong key (the demo's flag): its student disputed
    (dispute,) = report.rounds[0]["disputes"]
    assert (dispute["teacher"], dispute["outcome"]) == ("org-00000", "defective")
    assert [d["verdict"] for d in report.verdicts[0]["disputes"]] == ["match"]  # replay agrees
    assert report.rounds[1]["disputes"] == []
    for entry in report.rounds:
        for pair in entry["pairs"]:
            disputed = entry["round"] == 1 and pair["teacher"] == "org-00000"
            assert (pair["gain"] is None) == disputed  # every other student process reported
    assert {org["name"] for org in report.organizations} == {"org-00000", "org-00001", "org-00002"}
    assert all(org["withdrawable_eth"] > 0 for org in report.organizations)
    slashed = [s["offender"] for s in report.rounds[0]["slashes"]]
    assert slashed == ["org-00000"]
    assert (tmp_path / "logs" / "matchmaker.log").exists()
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False)
    assert leftovers.stdout.strip() == ""
