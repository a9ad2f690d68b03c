"""`knexa demo`: the main job end to end on the embedded default.

Until the full system (agents, matchmaker, IPFS) is wired together this plays one scripted
marketplace round on a local Anvil chain and prints the decoded events.
"""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table

from chain.cli import print_events
from chain.demo import run_chain_demo


def run_demo(json_output: bool = False) -> None:
    console = Console()
    if not json_output:
        console.rule("knexa demo: one marketplace round on a local Anvil chain")
    result = run_chain_demo()
    if json_output:
        payload = {
            "market": result.market,
            "organizations": result.organizations,
            "events": [event.to_json() for event in result.events],
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    console.print(f"market deployed at {result.market}; {len(result.events)} events decoded")
    print_events(result.events)
    table = Table("organization", "stake (ETH)", "reputation", "credits", title="after the round")
    for org in result.organizations:
        table.add_row(
            org["name"], f"{org['stake_eth']:.4f}", f"{org['reputation']:.3f}", f"{org['credits']:.4f}"
        )
    console.print(table)
    console.print("Anvil stopped.")
