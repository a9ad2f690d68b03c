"""`knexa sim ...`: synthetic federations for the bandit alone (no chain, no LLMs)."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from clikit import fail, json_option
from matchmaker.options import (
    beta0_option,
    beta_schedule_option,
    capacity_option,
    parse_policy_params,
    threshold_option,
)
from matchmaker.policies import PolicyParams
from sim.errors import SimError
from sim.fanout import BACKENDS, fan_out
from sim.synthetic import SimConfig, SimResult, run_simulation

app = typer.Typer(
    name="sim",
    help="Simulations: synthetic federations and policy comparisons.",
    no_args_is_help=True,
    add_completion=False,
)


def simulate_job(job: tuple[PolicyParams, SimConfig]) -> SimResult:
    """One policy's run of the synthetic federation (a module-level function: it is sent to workers)."""
    params, config = job
    return run_simulation(params, config)


@app.command()
def simulate(
    policy: list[str] = typer.Option(
        ["linucb", "heuristic", "random"],
        "--policy",
        "-p",
        help="policy to run (repeat the option for several)",
    ),
    orgs: int = typer.Option(
        32, "--orgs", "-n", min=2, help="number of organizations (initial and expected)"
    ),
    rounds: int = typer.Option(200, "--rounds", "-r", min=1, help="number of rounds"),
    seed: int = typer.Option(0, "--seed", min=0, help="seed of the synthetic federation"),
    churn: float = typer.Option(
        0.0, "--churn", min=0.0, max=0.99, help="per-round probability that an org leaves"
    ),
    missing: float = typer.Option(
        0.0, "--missing", min=0.0, max=0.99, help="probability that a report is missing"
    ),
    noise: float = typer.Option(0.02, "--noise", min=0.0, help="std of the reported gain's noise"),
    epsilon: float = typer.Option(1.0, "--epsilon", min=1e-6, help="DP epsilon of each profile histogram"),
    beta0: float = beta0_option(),
    beta_schedule: str = beta_schedule_option(),
    capacity: int = capacity_option(),
    threshold: float | None = threshold_option(),
    backend: str = typer.Option(
        "serial", "--backend", help="serial (here), processes (a local pool) or ray (the .[sim] extra)"
    ),
    jobs: int = typer.Option(2, "--jobs", min=1, help="local workers for the processes and ray backends"),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="join this Ray cluster (default: a private one on loopback)"
    ),
    json_output: bool = json_option(),
) -> None:
    """Run a synthetic federation under one or more policies and report regret against the oracle."""
    if backend not in BACKENDS:
        raise typer.BadParameter(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    try:
        config = SimConfig(
            n_orgs=orgs,
            rounds=rounds,
            seed=seed,
            churn=churn,
            p_missing=missing,
            noise_std=noise,
            dp_epsilon=epsilon,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    all_params = [parse_policy_params(p, beta0, beta_schedule, capacity, threshold) for p in policy]
    console = Console(stderr=True)
    results: dict[str, SimResult] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=json_output,
        transient=True,
    ) as progress:
        if backend == "serial":
            for params in all_params:
                task = progress.add_task(params.name, total=rounds)

                def tick(_round: int, task: TaskID = task) -> None:
                    progress.advance(task)

                results[params.name] = run_simulation(params, config, on_round=tick)
        else:
            progress.add_task(f"{len(all_params)} policies on {backend}", total=None)
            try:
                done = fan_out(
                    simulate_job,
                    [(params, config) for params in all_params],
                    backend=backend,  # type: ignore[arg-type]  # checked against BACKENDS above
                    workers=jobs,
                    ray_address=ray_address,
                )
            except SimError as error:
                fail(error)
            results = {result.policy: result for result in done}
    summary: dict[str, Any] = {name: res.summary() for name, res in results.items()}
    if json_output:
        typer.echo(json.dumps(summary, indent=2, sort_keys=True))
        return
    table = Table(title=f"synthetic federation: {orgs} orgs, {rounds} rounds, seed {seed}")
    for col in (
        "policy",
        "cumulative regret",
        "regret/round (last 20)",
        "value/round",
        "oracle/round",
        "missing",
    ):
        table.add_column(col, justify="right" if col != "policy" else "left")
    for name, s in summary.items():
        table.add_row(
            name,
            f"{s['cumulative_regret']:.3f}",
            f"{s['mean_regret_last_20']:.4f}",
            f"{s['mean_chosen_value']:.4f}",
            f"{s['mean_oracle_value']:.4f}",
            str(s["missing_reports"]),
        )
    Console().print(table)
