"""Fanning simulations out gives the same answers on every backend, Ray included (a real local cluster)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from knexa.cli import app
from matchmaker.policies import PolicyParams
from sim.cli import simulate_job
from sim.errors import SimError
from sim.fanout import fan_out
from sim.synthetic import SimConfig


def _jobs() -> list[tuple[PolicyParams, SimConfig]]:
    config = SimConfig(n_orgs=6, rounds=8, seed=3)
    return [(PolicyParams(name=name), config) for name in ("linucb", "random", "heuristic")]  # type: ignore[arg-type]


def test_processes_give_the_serial_answers() -> None:
    serial = fan_out(simulate_job, _jobs(), backend="serial")
    pooled = fan_out(simulate_job, _jobs(), backend="processes", workers=2)
    assert [r.regret for r in pooled] == [r.regret for r in serial]
    assert [r.policy for r in serial] == ["linucb", "random", "heuristic"]


def test_ray_gives_the_serial_answers_and_leaves_no_cluster() -> None:
    import ray  # the .[sim] extra, which `make test` installs

    serial = fan_out(simulate_job, _jobs(), backend="serial")
    on_ray = fan_out(simulate_job, _jobs(), backend="ray", workers=2)
    assert [r.regret for r in on_ray] == [r.regret for r in serial]
    assert not ray.is_initialized()


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(SimError, match="unknown backend"):
        fan_out(simulate_job, _jobs(), backend="threads")  # type: ignore[arg-type]


def test_the_cli_answers_the_same_on_every_backend() -> None:
    runner = CliRunner()
    common = ["sim", "simulate", "-p", "linucb", "-p", "random", "--orgs", "5", "--rounds", "4", "--json"]
    serial = runner.invoke(app, common)
    pooled = runner.invoke(app, [*common, "--backend", "processes", "--jobs", "2"])
    assert serial.exit_code == 0, serial.output
    assert pooled.exit_code == 0, pooled.output
    assert json.loads(serial.stdout) == json.loads(pooled.stdout)
    bad = runner.invoke(app, [*common, "--backend", "threads"])
    assert bad.exit_code == 2
