"""`knexa sim ...`: synthetic federations for the bandit alone (no chain, no LLMs)."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from clikit import json_option
from matchmaker.options import (
    beta0_option,
    beta_schedule_option,
    capacity_option,
    parse_policy_params,
    threshold_option,
)
from sim.synthetic import SimConfig, SimResult, run_simulation

app = typer.Typer(
    name="sim",
    help="Simulations: synthetic federations and policy comparisons.",
    no_args_is_help=True,
    add_completion=False,
)


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
    json_output: bool = json_option(),
) -> None:
    """Run a synthetic federation under one or more policies and report regret against the oracle."""
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
        for params in all_params:
            task = progress.add_task(params.name, total=rounds)

            def tick(_round: int, task: TaskID = task) -> None:
                progress.advance(task)

            results[params.name] = run_simulation(params, config, on_round=tick)
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
