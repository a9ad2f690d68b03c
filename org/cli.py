"""`knexa org ...`: create an organization, register it, run its agent, and look after its stake."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from agent.errors import AgentError
from chain.accounts import dev_account
from chain.client import MarketClient, OrganizationStatus, connect
from chain.deploy import Deployment, verify_deployment
from chain.errors import ChainError
from chain.units import ether, from_wad
from clikit import (
    DEFAULT_RPC_URL,
    ExitCode,
    emit,
    fail,
    json_option,
    manifest_option,
    print_json,
    rpc_option,
    store_option,
)
from clikit.backoff import Backoff
from exchange.cid import cid_binary
from exchange.errors import ExchangeError
from exchange.stores import open_store
from market.errors import MarketError
from org.errors import OrgError
from org.identity import (
    PASSWORD_ENV,
    IdentityError,
    OrgConfig,
    OrgIdentity,
    address_of,
    create_identity,
    default_home,
    load_config,
    unlock,
)
from org.learners import Learner, UnknownLearnerError, build_learner, learner_kinds
from org.runtime import OrgRuntime

log = logging.getLogger("knexa.org")

app = typer.Typer(help="Run an organization: identity, registration, the agent, stake.", no_args_is_help=True)
console = Console(stderr=True)

DEMO_DEFECTIVE_OPTION = typer.Option(
    None,
    "--demo-defective-round",
    hidden=True,
    help="demos only: in this round, seal bundles to the wrong key (the student disputes them)",
)
ORG_OPTION = typer.Option(None, "--org", help="organization name (its home is .knexa/orgs/NAME)")
HOME_OPTION = typer.Option(None, "--home", help="the organization's home directory (overrides --org)")
LEARNER_OPTION = typer.Option("synthetic", help="synthetic (simulated skills) or lora (real tiny models)")
DEV_ACCOUNT_OPTION = typer.Option(
    None, "--dev-account", help="import Anvil's funded dev account N as the key (local chains only)"
)


def _home(org: str | None, home: Path | None) -> Path:
    if home is not None:
        return home
    if org is None:
        fail("give --org NAME or --home DIR")
    return default_home(org)


def _password(confirm: bool = False) -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password:
        return password
    if not sys.stdin.isatty():
        fail(f"no password: set {PASSWORD_ENV} or run in a terminal to be prompted")
    return str(typer.prompt("keystore password", hide_input=True, confirmation_prompt=confirm))


def _identity(org: str | None, home: Path | None) -> OrgIdentity:
    try:
        return unlock(_home(org, home), _password())
    except IdentityError as error:
        fail(str(error))


def _market(identity: OrgIdentity) -> tuple[MarketClient, Deployment]:
    deployment = Deployment.load(Path(identity.config.manifest))
    market = verify_deployment(connect(identity.config.rpc_url), deployment)
    return market.with_account(identity.account), deployment


def make_learner(identity: OrgIdentity) -> Learner:
    """The learner the organization's config names."""
    settings = identity.config.learner
    try:
        return build_learner(
            str(settings.get("kind", "synthetic")), identity.config.name, identity.home, settings
        )
    except UnknownLearnerError as error:
        fail(f"{error.args[0]} in {identity.home / 'config.json'}")
    except (OrgError, AgentError) as error:
        fail(f"the learner of {identity.config.name} does not start: {error}")


@app.command()
def init(
    name: str = typer.Argument(..., help="the organization's display name (1-64 bytes)"),
    home: Path | None = HOME_OPTION,
    rpc: str | None = rpc_option(f"JSON-RPC URL of the chain (default: {DEFAULT_RPC_URL})"),
    manifest: Path = manifest_option(),
    store: str = store_option(),
    learner: str = LEARNER_OPTION,
    seed: int = typer.Option(0, help="seed of the learner (the lora learner's data federation seed)"),
    scale: str = typer.Option(
        "tiny",
        help="lora learner: tiny (the benchmark's and the demo's, seconds per round) or small (the -s zoo)",
    ),
    data_index: int | None = typer.Option(
        None, "--index", help="lora learner: this organization's data share"
    ),
    federation_size: int = typer.Option(
        3, "--federation-size", help="lora learner: organizations in the data"
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        help="the organization's own base model: a transformers checkpoint directory (config, "
        "safetensors, tokenizer; loaded offline) or a zoo name (tiny:llama, small:gpt2, smoke:neox)",
    ),
    data: Path | None = typer.Option(
        None, "--data", help="the organization's own problems (JSONL, see org/data.py); with --model"
    ),
    validation: Path | None = typer.Option(
        None, "--validation", help="validation problems (JSONL); default: the last fifth of --data"
    ),
    transfer: Path | None = typer.Option(
        None, "--transfer", help="the public transfer set (JSONL); default: the seeded federation's"
    ),
    lora_rank: int | None = typer.Option(None, "--lora-rank", min=1, help="LoRA rank (default: the model's)"),
    max_len: int | None = typer.Option(None, "--max-len", min=16, help="tokens of prompt + completion"),
    steps: int | None = typer.Option(None, "--steps", min=1, help="optimizer steps per round"),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="examples per step"),
    warmup_steps: int | None = typer.Option(None, "--warmup-steps", min=0, help="local steps on first start"),
    max_new_tokens: int | None = typer.Option(None, "--max-new-tokens", min=1, help="tokens generated"),
    dev_account_index: int | None = DEV_ACCOUNT_OPTION,
    json_output: bool = json_option(),
) -> None:
    """Create the organization's identity: an encrypted Ethereum key, an encryption key, a config.

    With --model and --data the organization brings its own base model and problems: the data is
    validated (every bad line named) and copied into its home; nothing is written on error."""
    target = home or default_home(name)
    own = _own_files(
        model,
        data,
        validation,
        transfer,
        {
            "lora_rank": lora_rank,
            "max_len": max_len,
            "steps": steps,
            "batch_size": batch_size,
            "warmup_steps": warmup_steps,
            "max_new_tokens": max_new_tokens,
        },
    )
    if own is not None:
        learner = "lora"
    identity = _create(
        name,
        target,
        rpc,
        manifest,
        store,
        learner,
        seed,
        scale,
        data_index,
        federation_size,
        dev_account_index,
        json_output,
        own,
    )
    emit(
        json_output,
        {"name": name, "address": identity.address, "home": str(target), "learner": identity.config.learner},
        f"organization {name}: address {identity.address}, home {target}",
    )


@dataclass(frozen=True)
class OwnFiles:
    """An organization's own model and data, checked before anything is written."""

    settings: dict[str, Any]
    files: dict[str, Path]  # file name in the home -> source


def _own_files(
    model: str | None,
    data: Path | None,
    validation: Path | None,
    transfer: Path | None,
    options: dict[str, int | None],
) -> OwnFiles | None:
    from org.data import DataFileError, parse_problems, parse_transfer
    from org.lora import DATA_FILE, TRANSFER_FILE, VALIDATION_FILE
    from org.model import ModelLoadError, check_source

    if model is None and data is None:
        if validation is not None or transfer is not None:
            fail("--validation and --transfer go with --model and --data", code=ExitCode.USAGE)
        return None
    if model is None or data is None:
        fail(
            "an organization's own model and data go together: give both --model and --data",
            code=ExitCode.USAGE,
        )
    try:
        source = check_source(model)
        parse_problems(data)
        files = {DATA_FILE: data}
        if validation is not None:
            parse_problems(validation)
            files[VALIDATION_FILE] = validation
        if transfer is not None:
            parse_transfer(transfer)
            files[TRANSFER_FILE] = transfer
    except (DataFileError, ModelLoadError) as error:
        fail(error)
    settings: dict[str, Any] = {"model": source} | {k: v for k, v in options.items() if v is not None}
    return OwnFiles(settings, files)


def _create(
    name: str,
    target: Path,
    rpc: str | None,
    manifest: Path,
    store: str,
    learner: str,
    seed: int,
    scale: str,
    data_index: int | None,
    federation_size: int,
    dev_account_index: int | None,
    json_output: bool,
    own: OwnFiles | None = None,
) -> OrgIdentity:
    if not 0 < len(name.encode()) <= 64:
        fail("the name must be 1 to 64 bytes", json_output=json_output)
    if not name.isprintable() or name != name.strip():
        fail("the name must be printable, without leading or trailing spaces", json_output=json_output)
    if learner not in learner_kinds():
        known = ", ".join(learner_kinds())
        fail(
            f"unknown learner kind {learner!r} (known: {known})", json_output=json_output, code=ExitCode.USAGE
        )
    settings: dict[str, Any] = {"kind": learner, "seed": seed, "scale": scale}
    if own is not None:
        settings |= own.settings
    else:
        settings["n_orgs"] = federation_size
        if data_index is not None:
            settings["index"] = data_index
    if learner == "lora" and own is None and data_index is None and not _federation_name(name):
        fail(
            f"a lora organization named {name!r} needs its data: give --model and --data "
            "(its own), or --index N (a share of the seeded federation)",
            json_output=json_output,
            code=ExitCode.USAGE,
        )
    config = OrgConfig(
        name=name,
        rpc_url=rpc or DEFAULT_RPC_URL,
        manifest=str(manifest),
        store=store,
        learner=settings,
    )
    key = bytes(dev_account(dev_account_index).key) if dev_account_index is not None else None
    try:
        identity = create_identity(target, config, _password(confirm=True), key)
    except IdentityError as error:
        fail(str(error), json_output=json_output)
    for file_name, source in (own.files if own is not None else {}).items():
        shutil.copyfile(source, target / file_name)
    return identity


def _federation_name(name: str) -> bool:
    """`org-N`: the lora learner takes its federation share from the name."""
    digits = name.rsplit("-", 1)[-1]
    return name.startswith("org-") and digits.isdigit()


@app.command()
def register(
    stake: float = typer.Option(2.0, help="stake in ETH (at least the market's minimum)"),
    org: str | None = ORG_OPTION,
    home: Path | None = HOME_OPTION,
    json_output: bool = json_option(),
) -> None:
    """Publish the sanitised profile and register on chain with a stake."""
    _register(_identity(org, home), stake, json_output)


def _register(identity: OrgIdentity, stake: float, json_output: bool, learner: Learner | None = None) -> None:
    try:
        market, _ = _market(identity)
        store = open_store(identity.config.store)
        profile_cid = store.put((learner or make_learner(identity)).profile().to_bytes())
        receipt = market.register(
            identity.config.name, cid_binary(profile_cid), identity.encryption_public_key, ether(stake)
        )
    except (ChainError, ExchangeError, OrgError) as error:
        fail(str(error), json_output=json_output)
    emit(
        json_output,
        {
            "address": identity.address,
            "profile_cid": profile_cid,
            "transaction": receipt.transaction_hash,
            "block": receipt.block_number,
        },
        f"registered {identity.config.name} ({identity.address}) with {stake} ETH; "
        f"profile {profile_cid}; transaction {receipt.transaction_hash} in block {receipt.block_number}",
    )


@app.command()
def join(
    org: str | None = ORG_OPTION,
    home: Path | None = HOME_OPTION,
    once: bool = typer.Option(False, "--once", help="do what is due now, then exit"),
    max_rounds: int | None = typer.Option(None, help="exit after this many finalized rounds took part in"),
    poll: float | None = typer.Option(None, help="seconds between looks at the chain (default: config)"),
    json_output: bool = json_option(),
    demo_defective_round: int | None = DEMO_DEFECTIVE_OPTION,
) -> None:
    """Run the agent: teach, learn and report in every round it is paired in (Ctrl-C stops it cleanly)."""
    _join(
        _identity(org, home), once, max_rounds, poll, json_output, demo_defective_round=demo_defective_round
    )


def _join(
    identity: OrgIdentity,
    once: bool,
    max_rounds: int | None,
    poll: float | None,
    json_output: bool,
    learner: Learner | None = None,
    demo_defective_round: int | None = None,
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        market, deployment = _market(identity)
        runtime = OrgRuntime(
            market,
            open_store(identity.config.store),
            identity.encryption_key,
            learner or make_learner(identity),
            identity.home,
            deployment.deploy_block,
            demo_defective_round=demo_defective_round,
        )
    except (ChainError, ExchangeError) as error:
        fail(str(error), json_output=json_output)
    if not once:  # a long-running agent says when its model is loaded and it follows the chain
        emit(
            json_output,
            {"action": "ready", "round": None, "detail": f"{identity.config.name} follows the market"},
            f"{identity.config.name}: ready, following the market",
        )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rounds_done = 0
    backoff = Backoff()
    try:
        while not stop.is_set():
            try:
                actions = runtime.step()
            except (ChainError, ExchangeError, MarketError) as error:
                # The chain or the store is down: the next step rebuilds what it needs from the
                # chain and state.json, so wait (capped exponential backoff) and try again.
                if once:
                    fail(str(error), json_output=json_output)
                first = backoff.state.error is None
                wait = backoff.failed(error)
                if first:
                    log.warning("step failed, retrying with backoff: %s", backoff.state.error)
                stop.wait(wait)
                continue
            if backoff.succeeded("step"):
                log.warning("recovered after an outage")
            for action in actions:
                emit(
                    json_output, action.to_json(), f"round {action.round_id}: {action.kind}: {action.detail}"
                )
                if action.kind == "profile":
                    rounds_done += 1
            if once or (max_rounds is not None and rounds_done >= max_rounds):
                break
            stop.wait(poll if poll is not None else identity.config.poll_seconds)
    except KeyboardInterrupt:
        pass


@app.command()
def status(
    org: str | None = ORG_OPTION, home: Path | None = HOME_OPTION, json_output: bool = json_option()
) -> None:
    """Stake, reputation, credits, rounds taken part in, and what is pending (no password needed)."""
    target = _home(org, home)
    try:
        config = load_config(target)
        address = address_of(target)
        deployment = Deployment.load(Path(config.manifest))
        market = verify_deployment(connect(config.rpc_url), deployment)
        state = market.organization(address)
        pending = market.pending_withdrawal(address)
        open_round = market.open_round_id()
        pairs = market.pairs(open_round) if open_round else []
    except (ChainError, IdentityError) as error:
        fail(str(error), json_output=json_output)
    todo = [
        f"publish a bundle for {pair.student}"
        for pair in pairs
        if pair.teacher == address and not pair.bundle_published
    ] + [
        f"report the gain from {pair.teacher}"
        for pair in pairs
        if pair.student == address and not pair.gain_reported
    ]
    report = {
        "name": config.name,
        "address": address,
        "status": state.status.name.lower(),
        "stake_eth": from_wad(state.stake),
        "reputation": from_wad(state.reputation),
        "credits": from_wad(state.credits),
        "withdrawable_eth": from_wad(pending),
        "open_round": open_round or None,
        "pending_actions": todo,
    }
    if json_output:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    table = Table(show_header=False, title=f"organization {config.name}")
    for key, value in report.items():
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    Console().print(table)


@app.command("exit")
def exit_market(
    org: str | None = ORG_OPTION,
    home: Path | None = HOME_OPTION,
    complete: bool = typer.Option(False, "--complete", help="finish a requested exit after its cooldown"),
    json_output: bool = json_option(),
) -> None:
    """Leave the market: request the exit, then (after the cooldown) `--complete` it."""
    identity = _identity(org, home)
    try:
        market, _ = _market(identity)
        receipt = market.complete_exit() if complete else market.request_exit()
        state = market.organization(identity.address)
    except ChainError as error:
        fail(str(error), json_output=json_output)
    detail = (
        f"exit available at block {state.exit_available_at_block}"
        if state.status is OrganizationStatus.EXITING
        else "exited: the stake is withdrawable"
    )
    emit(
        json_output,
        {"status": state.status.name.lower(), "transaction": receipt.transaction_hash, "detail": detail},
        detail,
    )


@app.command()
def withdraw(
    org: str | None = ORG_OPTION, home: Path | None = HOME_OPTION, json_output: bool = json_option()
) -> None:
    """Withdraw everything the organization is owed (fees, slashes received, released stake)."""
    identity = _identity(org, home)
    try:
        market, _ = _market(identity)
        amount = market.pending_withdrawal(identity.address)
        receipt = market.withdraw()
    except ChainError as error:
        fail(str(error), json_output=json_output)
    emit(
        json_output,
        {"withdrawn_eth": from_wad(amount), "transaction": receipt.transaction_hash},
        f"withdrew {from_wad(amount):.6f} ETH (transaction {receipt.transaction_hash})",
    )


@app.command()
def up(
    name: str = typer.Argument(..., help="the organization's display name"),
    home: Path | None = HOME_OPTION,
    rpc: str | None = rpc_option(f"JSON-RPC URL of the chain (default: {DEFAULT_RPC_URL})"),
    manifest: Path = manifest_option(),
    store: str = store_option(),
    learner: str = LEARNER_OPTION,
    seed: int = typer.Option(0, help="seed of the learner"),
    dev_account_index: int | None = DEV_ACCOUNT_OPTION,
    stake: float = typer.Option(2.0, help="stake in ETH when registering"),
    poll: float | None = typer.Option(None, help="seconds between looks at the chain"),
    once: bool = typer.Option(
        False, "--once", help="after init and registration, do what is due now and exit"
    ),
    json_output: bool = json_option(),
    demo_defective_round: int | None = DEMO_DEFECTIVE_OPTION,
) -> None:
    """Init (if needed), register (if needed) and join: one command for an unattended organization."""
    target = home or default_home(name)
    if (target / "config.json").exists():
        identity = _identity(None, target)
    else:
        identity = _create(
            name, target, rpc, manifest, store, learner, seed, "tiny", None, 3, dev_account_index, json_output
        )
    try:
        market, _ = _market(identity)
        registered = market.organization(identity.address).status is not OrganizationStatus.NONE
    except ChainError as error:
        fail(str(error), json_output=json_output)
    loaded = make_learner(identity)  # loaded once: its profile registers, then it trains
    if not registered:
        _register(identity, stake, json_output, loaded)
    _join(identity, once, None, poll, json_output, loaded, demo_defective_round=demo_defective_round)


@app.command()
def doctor(
    org: str | None = ORG_OPTION, home: Path | None = HOME_OPTION, json_output: bool = json_option()
) -> None:
    """Check the config, keystore, data, model, sandbox, chain, store and registration; say how to fix."""
    from org.doctor import diagnose

    checks = diagnose(_home(org, home))
    healthy = all(check.ok for check in checks)
    if json_output:
        print_json({"ok": healthy, "checks": [check.to_json() for check in checks]})
    else:
        table = Table(title="knexa org doctor")
        for column in ("check", "", "detail", "how to fix"):
            table.add_column(column)
        for check in checks:
            mark = "skip" if check.skipped else ("ok" if check.ok else "FAIL")
            table.add_row(check.name, mark, check.detail, check.fix)
        Console().print(table)
    if not healthy:
        raise typer.Exit(int(ExitCode.FAILURE))
