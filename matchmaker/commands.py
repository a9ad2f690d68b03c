"""`knexa matchmaker run|serve` and `knexa audit replay`: the matchmaker against a real chain + store."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from chain.accounts import account_from_env, dev_account
from chain.client import MarketClient, connect
from chain.deploy import Deployment, verify_deployment
from chain.errors import ChainError
from clikit import ExitCode, fail, json_option, manifest_option, rpc_option, store_option
from exchange.errors import ExchangeError
from exchange.stores import open_store
from market.errors import MarketError
from matchmaker.audit import MATCH, MISMATCH, summarize, verify_rounds
from matchmaker.driver import Driver
from matchmaker.errors import MatchmakerError
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
from matchmaker.policies import PolicyParams
from matchmaker.service import DEFAULT_ROUND_BLOCKS, Matchmaker, MatchmakerHalted, StepResult

console = Console(stderr=True)
audit_app = typer.Typer(help="Audit the marketplace from its public record.", no_args_is_help=True)

KEY_ENV_OPTION = typer.Option(None, help="environment variable holding the matchmaker's private key")
ROUND_BLOCKS_OPTION = typer.Option(DEFAULT_ROUND_BLOCKS, help="blocks from opening to deadline")
DEV_ACCOUNT_OPTION = typer.Option(None, "--dev-account", help="use Anvil's dev account N (local chains only)")


def _market(rpc: str | None, manifest: Path) -> tuple[MarketClient, Deployment]:
    deployment = Deployment.load(manifest)
    return verify_deployment(connect(rpc or deployment.rpc_url), deployment), deployment


def _matchmaker(
    rpc: str | None,
    manifest: Path,
    store: str,
    key_env: str | None,
    dev_index: int | None,
    params: PolicyParams,
    seed: int,
    round_blocks: int,
    json_output: bool,
) -> Matchmaker:
    if (key_env is None) == (dev_index is None):
        fail("give exactly one of --key-env VAR or --dev-account N", json_output=json_output)
    if params.name == "oracle":
        fail("the oracle policy needs the true gains: it exists in simulations only", json_output=json_output)
    try:
        account = account_from_env(key_env) if key_env else dev_account(dev_index or 0)
        market, deployment = _market(rpc, manifest)
        return Matchmaker(
            market.with_account(account),
            open_store(store),
            params,
            seed=seed,
            from_block=deployment.deploy_block,
            round_blocks=round_blocks,
        )
    except (ChainError, ExchangeError, MarketError, MatchmakerError, KeyError) as error:
        fail(error, json_output=json_output)


def register(app: typer.Typer) -> None:
    """Add `run` and `serve` to the `knexa matchmaker` app."""

    @app.command()
    def run(
        rpc: str | None = rpc_option(),
        manifest: Path = manifest_option(),
        store: str = store_option(),
        key_env: str | None = KEY_ENV_OPTION,
        dev_index: int | None = DEV_ACCOUNT_OPTION,
        policy: str = policy_option(),
        beta0: float = beta0_option(),
        beta_schedule: str = beta_schedule_option(),
        capacity: int = capacity_option(),
        threshold: float | None = threshold_option(),
        policy_file: Path | None = policy_file_option(),
        seed: int = seed_option(),
        round_blocks: int = ROUND_BLOCKS_OPTION,
        poll: float = typer.Option(1.0, help="seconds between checks when there is nothing to do"),
        max_rounds: int | None = typer.Option(None, help="stop after finalizing this many rounds"),
        once: bool = typer.Option(False, "--once", help="do the one thing the market needs now, then exit"),
        json_output: bool = json_option(),
    ) -> None:
        """Drive rounds: decide, commit the decision record, open, wait for the deadline, finalize."""
        params = parse_policy_params(policy, beta0, beta_schedule, capacity, threshold, policy_file)
        matchmaker = _matchmaker(
            rpc, manifest, store, key_env, dev_index, params, seed, round_blocks, json_output
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        finalized = 0

        def report(result: StepResult) -> None:
            nonlocal finalized
            if json_output:
                line = {"action": result.action, "round": result.round_id, "detail": result.detail}
                sys.stdout.write(json.dumps(line) + "\n")
                sys.stdout.flush()
            elif result.action in ("opened", "ruled", "finalized"):
                console.print(f"round {result.round_id}: {result.action} ({result.detail})")
            if once:
                stop.set()
            if result.action == "finalized":
                finalized += 1
                if max_rounds is not None and finalized >= max_rounds:
                    stop.set()

        driver = Driver(matchmaker, poll_s=poll, on_step=report, on_error=lambda m: console.print(m))
        try:
            driver.run(stop)  # transient chain/store failures are retried with backoff
        except MatchmakerHalted as error:
            fail(error, json_output=json_output, code=ExitCode.HALTED)
        except KeyboardInterrupt:
            pass

    @app.command()
    def serve(
        rpc: str | None = rpc_option(),
        manifest: Path = manifest_option(),
        store: str = store_option(),
        key_env: str | None = KEY_ENV_OPTION,
        dev_index: int | None = DEV_ACCOUNT_OPTION,
        policy: str = policy_option(),
        beta0: float = beta0_option(),
        beta_schedule: str = beta_schedule_option(),
        capacity: int = capacity_option(),
        threshold: float | None = threshold_option(),
        policy_file: Path | None = policy_file_option(),
        seed: int = seed_option(),
        round_blocks: int = ROUND_BLOCKS_OPTION,
        drive: bool = typer.Option(True, help="also drive rounds in a background thread"),
        poll: float = typer.Option(1.0, help="seconds between checks when there is nothing to do"),
        host: str = typer.Option("127.0.0.1", help="interface to listen on"),
        port: int = typer.Option(8600, help="port to listen on"),
        json_output: bool = json_option(),
    ) -> None:
        """Serve the matchmaker's HTTP API (health, policy, rounds, verdicts; OpenAPI at /openapi.json)."""
        import uvicorn

        from matchmaker.api import create_app

        params = parse_policy_params(policy, beta0, beta_schedule, capacity, threshold, policy_file)
        matchmaker = _matchmaker(
            rpc, manifest, store, key_env, dev_index, params, seed, round_blocks, json_output
        )
        stop = threading.Event()
        driver = Driver(matchmaker, poll_s=poll, on_error=lambda m: console.print(m)) if drive else None
        api = create_app(matchmaker, driver)
        if driver is not None:
            driver.lock = api.state.lock

            def loop() -> None:
                try:
                    driver.run(stop)  # transient failures are retried; /health shows the state
                except MatchmakerHalted as error:
                    console.print(f"[bold red]matchmaker halted:[/] {error}")

            threading.Thread(target=loop, name="matchmaker-rounds", daemon=True).start()
        try:
            uvicorn.run(api, host=host, port=port, log_level="warning")
        finally:
            stop.set()


@audit_app.command()
def replay(
    rpc: str | None = rpc_option(),
    manifest: Path = manifest_option(),
    store: str = store_option(),
    from_block: int | None = typer.Option(None, help="first block (default: the deployment block)"),
    json_output: bool = json_option(),
) -> None:
    """Recompute every round from chain + store and print a verdict per round.

    Exit status: 0 when every round matches, 4 when a round mismatches, 5 when history is
    unverifiable (a document is missing), 1 when the chain or store cannot be read.
    """
    try:
        market, deployment = _market(rpc, manifest)
        verdicts = verify_rounds(
            market, open_store(store), deployment.deploy_block if from_block is None else from_block
        )
    except (ChainError, ExchangeError, MarketError) as error:
        fail(error, json_output=json_output)
    if json_output:
        sys.stdout.write(
            json.dumps({"rounds": [v.to_json() for v in verdicts], "summary": summarize(verdicts)}, indent=2)
            + "\n"
        )
    else:
        table = Table("round", "verdict", "first difference", "detail", title="replay of the matchmaker")
        colours = {MATCH: "green", MISMATCH: "bold red"}
        for verdict in verdicts:
            colour = colours.get(verdict.verdict, "yellow")
            table.add_row(
                str(verdict.round_id),
                f"[{colour}]{verdict.verdict}[/]",
                verdict.first_difference or "",
                verdict.detail,
            )
            for dispute in verdict.disputes:
                shade = colours.get(dispute.verdict, "yellow")
                table.add_row(
                    f"  pair {dispute.pair_index}",
                    f"dispute ruled {dispute.outcome}: [{shade}]{dispute.verdict}[/]",
                    dispute.first_difference or "",
                    f"evidence {dispute.evidence_cid}; {dispute.detail}",
                )
        Console().print(table)
    counts = summarize(verdicts)
    if counts[MISMATCH]:
        raise typer.Exit(ExitCode.MISMATCH)
    if counts["unverifiable"]:
        raise typer.Exit(ExitCode.UNVERIFIABLE)
