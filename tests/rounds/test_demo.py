"""The end-to-end market demo (real chain, store, matchmaker, sealed bundles, replay)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from knexa.cli import app
from knexa.market_demo import run_market_demo
from matchmaker.audit import MATCH


def test_market_demo_rounds_replay_and_pay() -> None:
    report = run_market_demo(organizations=4, rounds=3, seed=1)
    assert [verdict.verdict for verdict in report.verdicts] == [MATCH] * 3
    assert [outcome.round_id for outcome in report.rounds] == [1, 2, 3]
    for outcome in report.rounds:
        assert len(outcome.pairs) == 4
        assert {pair.student for pair in outcome.pairs} == {org["name"] for org in report.organizations}
        assert outcome.chosen_value <= outcome.oracle_value + 1e-12
    assert 0.0 < report.share_of_oracle() <= 1.0
    assert sum(org["earned_eth"] for org in report.organizations) > 0


def test_demo_command_json() -> None:
    result = CliRunner().invoke(app, ["demo", "--organizations", "3", "--rounds", "2", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [verdict["verdict"] for verdict in payload["verdicts"]] == ["match", "match"]


def test_demo_refuses_more_organizations_than_funded_accounts() -> None:
    with pytest.raises(ValueError, match="organizations must be in"):
        run_market_demo(organizations=9, rounds=1)
