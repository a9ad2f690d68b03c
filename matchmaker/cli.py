"""`knexa matchmaker policy`: the matchmaker's pure commands (the round loop is in `matchmaker.commands`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from matchmaker.options import (
    beta0_option,
    beta_schedule_option,
    capacity_option,
    parse_policy_params,
    policy_file_option,
    policy_option,
    seed_option,
    threshold_option,
)
from matchmaker.policies import policy_commitment

app = typer.Typer(
    name="matchmaker",
    help="The matchmaker: LinUCB over sanitised profiles, directed matching, rounds on chain.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command("policy")
def policy_cmd(
    policy: str = policy_option(),
    beta0: float = beta0_option(),
    beta_schedule: str = beta_schedule_option(),
    capacity: int = capacity_option(),
    threshold: float | None = threshold_option(),
    policy_file: Path | None = policy_file_option(),
    seed: int = seed_option(),
) -> None:
    """Print policy parameters as canonical JSON with their on-chain commitment (`policyDigest`)."""
    params = parse_policy_params(policy, beta0, beta_schedule, capacity, threshold, policy_file)
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
