"""The policy options every matchmaker command takes (`run`, `serve`, `policy`, and `knexa sim simulate`).

The same flags choose the policy everywhere; `--policy-file` (a JSON object of `PolicyParams`
fields) overrides the flags it names, so a long-lived deployment can keep its policy in a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from matchmaker.errors import PolicyError
from matchmaker.policies import POLICY_NAMES, PolicyParams


def policy_option(default: str = "linucb") -> Any:
    return typer.Option(default, "--policy", "-p", help=f"the pairing policy: {', '.join(POLICY_NAMES)}")


def beta0_option() -> Any:
    return typer.Option(0.5, "--beta0", min=0.0, help="LinUCB exploration weight")


def beta_schedule_option() -> Any:
    return typer.Option("inverse_sqrt", "--beta-schedule", help="constant | sqrt_log | inverse_sqrt")


def capacity_option() -> Any:
    return typer.Option(1, "--capacity", min=1, help="how many students a teacher may take per round")


def threshold_option() -> Any:
    return typer.Option(None, "--threshold", help="only pairs scoring above this are matched")


def policy_file_option() -> Any:
    return typer.Option(None, "--policy-file", help="JSON object of policy parameters (overrides the flags)")


def seed_option() -> Any:
    return typer.Option(0, "--seed", min=0, help="the matchmaker's committed seed")


def parse_policy_params(
    policy: str,
    beta0: float = 0.5,
    beta_schedule: str = "inverse_sqrt",
    capacity: int = 1,
    threshold: float | None = None,
    policy_file: Path | None = None,
) -> PolicyParams:
    """Policy parameters from the flags (and a file); a bad value is a `typer.BadParameter`."""
    if policy not in POLICY_NAMES:
        raise typer.BadParameter(f"unknown policy {policy!r}; choose from {', '.join(POLICY_NAMES)}")
    values: dict[str, Any] = {
        "name": policy,
        "beta0": beta0,
        "beta_schedule": beta_schedule,
        "capacity": capacity,
        "threshold": threshold,
    }
    if policy_file is not None:
        try:
            loaded = json.loads(policy_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise typer.BadParameter(f"cannot read the policy file {policy_file}: {error}") from error
        if not isinstance(loaded, dict):
            raise typer.BadParameter(f"the policy file {policy_file} must hold a JSON object")
        values.update(loaded)
    try:
        return PolicyParams.from_dict(values)
    except (PolicyError, ValueError, TypeError) as error:
        raise typer.BadParameter(str(error)) from error
