"""`knexa chain ...`: compile the contracts, run a local chain, deploy, and inspect state and events."""

from __future__ import annotations

import json
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from chain.accounts import account_from_env, dev_account
from chain.anvil import AnvilNode
from chain.client import DEFAULT_PARAMETERS, MarketClient, connect
from chain.compiler import compile_contracts, load_artifact, write_artifacts
from chain.deploy import Deployment, deploy_market, verify_deployment
from chain.devchain import MATCHMAKER_INDEX
from chain.errors import ChainError
from chain.events import EventReader
from chain.units import from_wad
from clikit import DEFAULT_RPC_URL, ExitCode, fail, json_option, manifest_option, print_json, rpc_option

app = typer.Typer(help="The marketplace contracts on an EVM chain (Anvil locally).", no_args_is_help=True)
console = Console()


def _print_manifest(deployment: Deployment) -> None:
    table = Table(title="knexa deployment", show_header=False)
    for key, value in deployment.to_json().items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    console.print(table)


@app.command("compile")
def compile_command(
    write: bool = typer.Option(False, "--write", help="rewrite contracts/artifacts/ from a fresh compile"),
    json_output: bool = json_option(),
) -> None:
    """Compile contracts/ from source and compare with (or rewrite) the committed artifacts."""
    fresh = compile_contracts()
    report: dict[str, Any] = {}
    for name, artifact in fresh.items():
        try:
            committed = load_artifact(name)
            same = committed.to_json() == artifact.to_json()
        except FileNotFoundError:
            same = False
        report[name] = {"matches_committed": same, "bytecode_sha256": artifact.bytecode_digest}
    if write:
        for path in write_artifacts(fresh):
            report.setdefault("written", []).append(str(path))
    if json_output:
        print_json(report)
    else:
        for name, entry in report.items():
            if name != "written":
                state = "matches" if entry["matches_committed"] else "DIFFERS from"
                console.print(f"{name}: fresh compile {state} the committed artifact")
        for path in report.get("written", []):
            console.print(f"wrote {path}")
    if not write and not all(entry["matches_committed"] for key, entry in report.items() if key != "written"):
        raise typer.Exit(ExitCode.FAILURE)


@app.command()
def up(
    port: int = typer.Option(8545, help="loopback port for Anvil's JSON-RPC"),
    host: str = typer.Option("127.0.0.1", help="interface to listen on (0.0.0.0 only inside a container)"),
    state: Path | None = typer.Option(None, help="Anvil state file: the chain survives restarts"),
    block_time: float | None = typer.Option(
        None, help="seconds per block (default: a block per transaction)"
    ),
    matchmaker: str | None = typer.Option(
        None, help="address holding MATCHMAKER_ROLE (default: dev account 1)"
    ),
    manifest: Path = manifest_option(),
    json_output: bool = json_option(),
) -> None:
    """Start a local Anvil, deploy the market (or reuse it from --state), print the manifest, run until
    stopped."""
    node = AnvilNode(port=port, host=host, state_file=state, block_time=block_time)
    try:
        node.start()
    except ChainError as error:
        fail(str(error), json_output=json_output)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        rpc_url = f"http://127.0.0.1:{port}"
        w3 = connect(rpc_url)
        deployment: Deployment | None = None
        if state is not None and manifest.exists():
            try:
                deployment = Deployment.load(manifest)
                verify_deployment(w3, deployment)
            except ChainError:
                deployment = None
        if deployment is None:
            deployment = deploy_market(
                w3,
                dev_account(0),
                matchmaker or dev_account(MATCHMAKER_INDEX).address,
                DEFAULT_PARAMETERS,
                rpc_url=rpc_url,
            )
            deployment.save(manifest)
        if json_output:
            print_json(deployment.to_json())
        else:
            _print_manifest(deployment)
            console.print(f"manifest: {manifest}\nAnvil on {rpc_url}; Ctrl-C stops it.")
        sys.stdout.flush()
        try:
            while not stop.wait(0.5):
                if not node.running:
                    fail("anvil exited", json_output=json_output)
        except KeyboardInterrupt:
            pass
    finally:
        node.stop()


@app.command()
def deploy(
    rpc: str | None = rpc_option(f"JSON-RPC URL of the chain (default: {DEFAULT_RPC_URL})"),
    deployer_key_env: str | None = typer.Option(
        None, help="environment variable holding the deployer's private key (never pass keys as arguments)"
    ),
    dev_account_index: int | None = typer.Option(
        None, "--dev-account", help="use Anvil's well-known dev account N instead (local chains only)"
    ),
    matchmaker: str | None = typer.Option(
        None, help="address holding MATCHMAKER_ROLE (default: the deployer)"
    ),
    manifest: Path = manifest_option(),
    json_output: bool = json_option(),
) -> None:
    """Deploy the market to an existing chain and write the manifest."""
    if (deployer_key_env is None) == (dev_account_index is None):
        fail("give exactly one of --deployer-key-env VAR or --dev-account N", json_output=json_output)
    try:
        deployer = (
            account_from_env(deployer_key_env) if deployer_key_env else dev_account(dev_account_index or 0)
        )
        rpc = rpc or DEFAULT_RPC_URL
        w3 = connect(rpc)
        deployment = deploy_market(
            w3, deployer, matchmaker or deployer.address, DEFAULT_PARAMETERS, rpc_url=rpc
        )
    except (ChainError, KeyError, ValueError) as error:
        fail(str(error), json_output=json_output)
        return
    deployment.save(manifest)
    if json_output:
        print_json(deployment.to_json())
    else:
        _print_manifest(deployment)
        console.print(f"manifest: {manifest}")


def _status(rpc: str | None, manifest: Path) -> tuple[MarketClient, dict[str, Any]]:
    deployment = Deployment.load(manifest)
    w3 = connect(rpc or deployment.rpc_url)
    market = verify_deployment(w3, deployment)
    organizations = market.organizations()
    return market, {
        "chain_id": market.chain_id,
        "block": market.block_number(),
        "market": market.address,
        "code_verified": True,
        "parameters": asdict(market.parameters()),
        "organizations": [
            {
                "address": org.address,
                "name": org.name,
                "status": org.status.name.lower(),
                "stake_eth": from_wad(org.stake),
                "reputation": from_wad(org.reputation),
                "credits": from_wad(org.credits),
            }
            for org in organizations
        ],
        "next_round": market.next_round_id(),
        "open_round": market.open_round_id(),
        "escrowed_fees_wei": market.escrowed_fees(),
        "balance_wei": market.contract_balance(),
    }


@app.command()
def status(
    rpc: str | None = rpc_option(),
    manifest: Path = manifest_option(),
    json_output: bool = json_option(),
) -> None:
    """Show the chain, the deployed market (its code checked against the artifact) and its organizations."""
    try:
        _, report = _status(rpc, manifest)
    except ChainError as error:
        fail(str(error), json_output=json_output)
        return
    if json_output:
        print_json(report)
        return
    console.print(
        f"chain {report['chain_id']} at block {report['block']}; market {report['market']} (code verified); "
        f"next round {report['next_round']}, open round {report['open_round'] or 'none'}"
    )
    table = Table("organization", "name", "status", "stake (ETH)", "reputation", "credits")
    for org in report["organizations"]:
        table.add_row(
            org["address"],
            org["name"],
            org["status"],
            f"{org['stake_eth']:.4f}",
            f"{org['reputation']:.3f}",
            f"{org['credits']:.3f}",
        )
    console.print(table)


@app.command()
def events(
    rpc: str | None = rpc_option(),
    from_block: int | None = typer.Option(None, help="first block (default: the deployment block)"),
    name: list[str] | None = typer.Option(None, "--name", help="only these event names (repeatable)"),
    manifest: Path = manifest_option(),
    json_output: bool = json_option(),
) -> None:
    """Print the market's decoded events in chain order."""
    try:
        deployment = Deployment.load(manifest)
        w3 = connect(rpc or deployment.rpc_url)
        market = verify_deployment(w3, deployment)
        start = deployment.deploy_block if from_block is None else from_block
        decoded = EventReader(w3, market.contract).read(start, names=name or None)
    except (ChainError, ValueError) as error:
        fail(str(error), json_output=json_output)
        return
    if json_output:
        print_json([event.to_json() for event in decoded])
        return
    print_events(decoded)


def print_events(decoded: list[Any]) -> None:
    """A table of decoded events (shared with the demo)."""
    table = Table("block", "event", "arguments")
    for event in decoded:
        rendered = ", ".join(f"{key}={_short(value)}" for key, value in event.to_json()["args"].items())
        table.add_row(str(event.block_number), event.name, rendered)
    console.print(table)


def _short(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, dict | list) else str(value)
    if isinstance(value, str) and value.startswith("0x") and len(value) > 18:
        return value[:10] + "…" + value[-6:]
    return text
