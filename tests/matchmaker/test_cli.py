"""The matchmaker's CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from knexa.cli import app
from matchmaker.policies import PolicyParams, policy_commitment

runner = CliRunner()


@pytest.mark.parametrize("args", [["--help"], ["simulate", "--help"], ["policy", "--help"]])
def test_help(args: list[str]) -> None:
    result = runner.invoke(app, ["matchmaker", *args])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_simulate_json() -> None:
    result = runner.invoke(
        app,
        [
            "matchmaker",
            "simulate",
            "-p",
            "linucb",
            "-p",
            "random",
            "--orgs",
            "6",
            "--rounds",
            "4",
            "--churn",
            "0.2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"linucb", "random"}
    assert data["linucb"]["rounds"] == 4


def test_simulate_table() -> None:
    result = runner.invoke(app, ["matchmaker", "simulate", "--orgs", "4", "--rounds", "2"])
    assert result.exit_code == 0, result.output
    assert "heuristic" in result.output


def test_bad_policy_is_a_clear_error() -> None:
    result = runner.invoke(app, ["matchmaker", "simulate", "-p", "greedy", "--rounds", "1"])
    assert result.exit_code != 0
    assert "unknown policy" in result.output


def test_policy_prints_the_commitment_that_goes_on_chain() -> None:
    result = runner.invoke(app, ["matchmaker", "policy", "--beta0", "0.5", "--seed", "7"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["commitment"] == policy_commitment(PolicyParams(beta0=0.5), 7)
    assert printed["params_digest"] == PolicyParams(beta0=0.5).digest()
    assert printed["commitment"] != policy_commitment(PolicyParams(beta0=0.5), 8)
