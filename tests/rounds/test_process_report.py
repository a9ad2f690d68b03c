"""The process demo's printed summary (pure formatting of a report; the run itself is tested elsewhere)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from knexa.demo import print_process_report
from knexa.process_demo import ProcessDemoReport


def test_the_summary_shows_every_round_its_slashes_reputation_and_verdicts() -> None:
    report = ProcessDemoReport(
        rounds=[
            {
                "round": 1,
                "pairs": [
                    {
                        "teacher": "org-a",
                        "student": "org-b",
                        "bundle": "bafkreiexample",
                        "gain": 0.1875,
                        "reward_eth": 0.01,
                    },
                    {"teacher": "org-b", "student": "org-a", "bundle": None, "gain": None},
                ],
                "slashes": [{"offender": "org-b", "eth": 0.199}],
                "reputation": [
                    {"organization": "org-a", "after": 0.664},
                    {"organization": "org-b", "after": 0.32},
                ],
            }
        ],
        organizations=[
            {
                "name": "org-a",
                "stake_eth": 1.98,
                "withdrawable_eth": 0.219,
                "reputation": 0.664,
                "credits": 0.1875,
            }
        ],
        verdicts=[{"round": 1, "verdict": "match", "detail": "2 pairs recomputed exactly"}],
        logs=Path("/tmp/logs"),
    )
    console = Console(record=True, width=120)
    print_process_report(report, console)
    text = console.export_text()
    assert "round 1" in text
    assert "+0.1875" in text
    assert "no report" in text
    assert "slashed: org-b lost 0.1990 ETH" in text
    assert "reputation after the round: org-a 0.664, org-b 0.320" in text
    assert "replay of round 1: match (2 pairs recomputed exactly)" in text
