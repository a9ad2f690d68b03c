"""Organizations created and run through `knexa org`, on a real Anvil chain with a local store."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from chain.devchain import DevChain
from exchange.local import LocalStore
from exchange.store import ContentStore
from knexa.cli import app
from matchmaker.policies import PolicyParams
from matchmaker.service import Matchmaker

PASSWORD = "correct horse battery staple"


@dataclass
class CliMarket:
    chain: DevChain
    manifest: Path
    store: LocalStore
    homes: dict[str, Path]
    runner: CliRunner

    def org(self, name: str, *args: str) -> Result:
        return self.runner.invoke(
            app, ["org", *args, "--home", str(self.homes[name])], env={"KNEXA_PASSWORD": PASSWORD}
        )

    def join_once(self, name: str) -> list[dict[str, object]]:
        result = self.org(name, "join", "--once", "--json")
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]

    def matchmaker(self) -> Matchmaker:
        return matchmaker_for(self.chain, self.store, seed=5)


def matchmaker_for(chain: DevChain, store: ContentStore, *, seed: int, round_blocks: int = 30) -> Matchmaker:
    """The LinUCB matchmaker driving `chain` with the dev matchmaker account, from the deploy block."""
    return Matchmaker(
        chain.matchmaker(),
        store,
        PolicyParams(),
        seed=seed,
        from_block=chain.deployment.deploy_block,
        round_blocks=round_blocks,
    )


@pytest.fixture
def cli_market(dev_chain: DevChain, tmp_path: Path) -> CliMarket:
    manifest = tmp_path / "deployment.json"
    dev_chain.deployment.save(manifest)
    store = LocalStore(tmp_path / "store")
    runner = CliRunner()
    homes: dict[str, Path] = {}
    for index in range(3):
        name = f"org-{index:05d}"
        homes[name] = tmp_path / "orgs" / name
        created = runner.invoke(
            app,
            [
                "org",
                "init",
                name,
                "--home",
                str(homes[name]),
                "--rpc",
                dev_chain.node.rpc_url,
                "--manifest",
                str(manifest),
                "--store",
                str(store.root),
                "--dev-account",
                str(2 + index),
                "--json",
            ],
            env={"KNEXA_PASSWORD": PASSWORD},
        )
        assert created.exit_code == 0, created.output
    return CliMarket(dev_chain, manifest, store, homes, runner)


def init_and_register_through_cli(
    runner: CliRunner, chain: DevChain, store: str, homes: dict[str, Path], *init_options: str
) -> dict[str, str]:
    """`knexa org init` + `knexa org register` for each home (dev accounts 2, 3, ...); name -> address."""
    manifest = homes[next(iter(homes))].parent / "deployment.json"
    chain.deployment.save(manifest)
    env = {"KNEXA_PASSWORD": PASSWORD}
    addresses = {}
    for index, (name, home) in enumerate(homes.items()):
        common = ["--home", str(home), "--json"]
        created = runner.invoke(
            app,
            [
                *("org", "init", name, "--rpc", chain.node.rpc_url, "--manifest", str(manifest)),
                *("--store", store, "--dev-account", str(2 + index), *init_options, *common),
            ],
            env=env,
        )
        assert created.exit_code == 0, created.output
        registered = runner.invoke(app, ["org", "register", "--stake", "2", *common], env=env)
        assert registered.exit_code == 0, registered.output
        addresses[name] = json.loads(registered.stdout)["address"]
    return addresses
