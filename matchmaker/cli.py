"""`knexa matchmaker ...`: the matchmaker's command line (pure parts; the round loop comes later)."""

from __future__ import annotations

import json

import typer

from matchmaker.policies import POLICY_NAMES, PolicyParams, policy_commitment

app = typer.Typer(
    name="matchmaker",
    help="The matchmaker: LinUCB over sanitised profiles, directed matching, rounds on chain.",
    no_args_is_help=True,
    add_completion=False,
)


def parse_policy_params(
    policy: str, beta0: float, beta_schedule: str, capacity: int, threshold: float | None
) -> PolicyParams:
    if policy not in POLICY_NAMES:
        raise typer.BadParameter(f"unknown policy {policy!r}; choose from {', '.join(POLICY_NAMES)}")
    try:
        return PolicyParams.from_dict(
            {
                "name": policy,
                "beta0": beta0,
                "beta_schedule": beta_schedule,
                "capacity": capacity,
                "threshold": threshold,
            }
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


@app.command("policy")
def policy_cmd(
    policy: str = typer.Option("linucb", "--policy", "-p", help="linucb | random | heuristic | oracle"),
    beta0: float = typer.Option(0.5, "--beta0", min=0.0, help="LinUCB exploration weight"),
    beta_schedule: str = typer.Option(
        "inverse_sqrt", "--beta-schedule", help="constant | sqrt_log | inverse_sqrt"
    ),
    capacity: int = typer.Option(
        1, "--capacity", min=1, help="how many students a teacher may take per round"
    ),
    threshold: float | None = typer.Option(
        None, "--threshold", help="only pairs scoring above this are matched"
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="the matchmaker's committed seed"),
) -> None:
    """Print policy parameters as canonical JSON with their on-chain commitment (`policyDigest`)."""
    params = parse_policy_params(policy, beta0, beta_schedule, capacity, threshold)
    typer.echo(
        json.dumps(
            {
                "commitment": policy_commitment(params, seed),
                "params_digest": params.digest(),
                "seed": seed,
                "params": json.loads(params.canonical_json()),
            },
            indent=2,
        )
    )
