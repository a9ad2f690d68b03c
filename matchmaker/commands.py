"""`knexa matchmaker run|serve` and `knexa audit replay`: the matchmaker against a real chain + store."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from chain.accounts import account_from_env, dev_account
from chain.client import MarketClient, connect
from chain.deploy import Deployment, verify_deployment
from chain.errors import ChainError
from exchange.errors import ExchangeError
from exchange.stores import open_store
from matchmaker.audit import MATCH, MISMATCH, summarize, verify_rounds
from matchmaker.policies import POLICY_NAMES, PolicyParams
from matchmaker.service import DEFAULT_ROUND_BLOCKS, Matchmaker, MatchmakerHalted, StepResult

console = Console(stderr=True)
audit_app = typer.Typer(help="Audit the marketplace from its public record.", no_args_is_help=True)

MANIFEST_OPTION = typer.Option(
    Path(".knexa/deployment.json"), "--manifest", envvar="KNEXA_MANIFEST", help="deployment manifest path"
)
RPC_OPTION = typer.Option(None, "--rpc", envvar="KNEXA_RPC", help="JSON-RPC URL (default: the manifest's)")
STORE_OPTION = typer.Option(
    ".knexa/store", "--store", envvar="KNEXA_STORE", help="a store directory or an IPFS RPC API URL"
)
JSON_OPTION = typer.Option(False, "--json", help="print JSON for scripts")
KEY_ENV_OPTION = typer.Option(None, help="environment variable holding the matchmaker's private key")
POLICY_OPTION = typer.Option("linucb", help="linucb, random or heuristic")
POLICY_FILE_OPTION = typer.Option(None, help="JSON file of policy parameters")
SEED_OPTION = typer.Option(0, help="seed committed with the policy")
ROUND_BLOCKS_OPTION = typer.Option(DEFAULT_ROUND_BLOCKS, help="blocks from opening to deadline")
DEV_ACCOUNT_OPTION = typer.Option(None, "--dev-account", help="use Anvil's dev account N (local chains only)")


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _market(rpc: str | None, manifest: Path) -> tuple[MarketClient, Deployment]:
    deployment = Deployment.load(manifest)
    return verify_deployment(connect(rpc or deployment.rpc_url), deployment), deployment


def _policy(policy: str, policy_file: Path | None) -> PolicyParams:
    if policy_file is not None:
        data: dict[str, Any] = json.loads(policy_file.read_text(encoding="utf-8"))
        return PolicyParams.from_dict({"name": policy, **data})
    return PolicyParams(name=policy)  # type: ignore[arg-type]


def _matchmaker(
    rpc: str | None,
    manifest: Path,
    store: str,
    key_env: str | None,
    dev_index: int | None,
    policy: str,
    policy_file: Path | None,
    seed: int,
    round_blocks: int,
) -> Matchmaker:
    if (key_env is None) == (dev_index is None):
        _fail("give exactly one of --key-env VAR or --dev-account N")
    if policy not in POLICY_NAMES or policy == "oracle":
        _fail(f"--policy must be one of linucb, random, heuristic (got {policy!r})")
    account = account_from_env(key_env) if key_env else dev_account(dev_index or 0)
    market, deployment = _market(rpc, manifest)
    return Matchmaker(
        market.with_account(account),
        open_store(store),
        _policy(policy, policy_file),
        seed=seed,
        from_block=deployment.deploy_block,
        round_blocks=round_blocks,
    )


def register(app: typer.Typer) -> None:
    """Add `run` and `serve` to the `knexa matchmaker` app."""

    @app.command()
    def run(
        rpc: str | None = RPC_OPTION,
        manifest: Path = MANIFEST_OPTION,
        store: str = STORE_OPTION,
        key_env: str | None = KEY_ENV_OPTION,
        dev_index: int | None = DEV_ACCOUNT_OPTION,
        policy: str = POLICY_OPTION,
        policy_file: Path | None = POLICY_FILE_OPTION,
        seed: int = SEED_OPTION,
        round_blocks: int = ROUND_BLOCKS_OPTION,
        poll: float = typer.Option(1.0, help="seconds between checks when there is nothing to do"),
        max_rounds: int | None = typer.Option(None, help="stop after finalizing this many rounds"),
        once: bool = typer.Option(False, "--once", help="do the one thing the market needs now, then exit"),
        json_output: bool = JSON_OPTION,
    ) -> None:
        """Drive rounds: decide, commit the decision record, open, wait for the deadline, finalize."""
        try:
            matchmaker = _matchmaker(
                rpc, manifest, store, key_env, dev_index, policy, policy_file, seed, round_blocks
            )
        except (ChainError, ExchangeError, KeyError, ValueError) as error:
            _fail(str(error))
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        finalized = 0

        def report(result: StepResult) -> None:
            nonlocal finalized
            if json_output:
                line = {"action": result.action, "round": result.round_id, "detail": result.detail}
                sys.stdout.write(json.dumps(line) + "\n")
                sys.stdout.flush()
            elif result.action in ("opened", "finalized"):
                console.print(f"round {result.round_id}: {result.action} ({result.detail})")
            if once:
                stop.set()
            if result.action == "finalized":
                finalized += 1
                if max_rounds is not None and finalized >= max_rounds:
                    stop.set()

        try:
            matchmaker.run(stop, poll_s=poll, on_step=report)
        except MatchmakerHalted as error:
            _fail(str(error), 3)
        except (ChainError, ExchangeError) as error:
            _fail(str(error))
        except KeyboardInterrupt:
            pass

    @app.command()
    def serve(
        rpc: str | None = RPC_OPTION,
        manifest: Path = MANIFEST_OPTION,
        store: str = STORE_OPTION,
        key_env: str | None = KEY_ENV_OPTION,
        dev_index: int | None = DEV_ACCOUNT_OPTION,
        policy: str = POLICY_OPTION,
        policy_file: Path | None = POLICY_FILE_OPTION,
        seed: int = SEED_OPTION,
        round_blocks: int = ROUND_BLOCKS_OPTION,
        drive: bool = typer.Option(True, help="also drive rounds in a background thread"),
        poll: float = typer.Option(1.0, help="seconds between checks when there is nothing to do"),
        host: str = typer.Option("127.0.0.1", help="interface to listen on"),
        port: int = typer.Option(8600, help="port to listen on"),
    ) -> None:
        """Serve the matchmaker's HTTP API (health, policy, rounds, verdicts; OpenAPI at /openapi.json)."""
        import uvicorn

        from matchmaker.api import create_app

        try:
            matchmaker = _matchmaker(
                rpc, manifest, store, key_env, dev_index, policy, policy_file, seed, round_blocks
            )
        except (ChainError, ExchangeError, KeyError, ValueError) as error:
            _fail(str(error))
            return
        api = create_app(matchmaker)
        stop = threading.Event()
        if drive:

            def loop() -> None:
                while not stop.is_set():
                    with api.state.lock:
                        try:
                            result = matchmaker.step()
                        except (MatchmakerHalted, ChainError, ExchangeError) as error:
                            console.print(f"[bold red]matchmaker stopped:[/] {error}")
                            return
                    if result.action in ("waiting", "idle"):
                        stop.wait(poll)

            threading.Thread(target=loop, name="matchmaker-rounds", daemon=True).start()
        try:
            uvicorn.run(api, host=host, port=port, log_level="warning")
        finally:
            stop.set()


@audit_app.command()
def replay(
    rpc: str | None = RPC_OPTION,
    manifest: Path = MANIFEST_OPTION,
    store: str = STORE_OPTION,
    from_block: int | None = typer.Option(None, help="first block (default: the deployment block)"),
    json_output: bool = JSON_OPTION,
) -> None:
    """Recompute every round from chain + store and print a verdict per round.

    Exit status: 0 when every round matches, 1 when a round mismatches, 2 when history is
    unverifiable (a document is missing), 4 when the chain or store cannot be read.
    """
    try:
        market, deployment = _market(rpc, manifest)
        verdicts = verify_rounds(
            market, open_store(store), deployment.deploy_block if from_block is None else from_block
        )
    except (ChainError, ExchangeError) as error:
        _fail(str(error), 4)
        return
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
        Console().print(table)
    counts = summarize(verdicts)
    if counts[MISMATCH]:
        raise typer.Exit(1)
    if counts["unverifiable"]:
        raise typer.Exit(2)
