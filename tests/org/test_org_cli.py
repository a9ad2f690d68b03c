"""`knexa org` end to end on a real chain: identities, registration, rounds, crash/resume, bad bundles."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chain.devchain import DevChain
from chain.units import from_wad
from exchange.cid import cid_text
from exchange.ipfs import IpfsStore
from exchange.node import IpfsNode
from knexa.cli import app
from matchmaker.audit import MATCH, verify_rounds
from org.identity import unlock
from org.runtime import OrgRuntime
from sim.learner import SyntheticLearner
from tests.org.conftest import PASSWORD, CliMarket, init_and_register_through_cli, matchmaker_for


def _register_all(market: CliMarket) -> dict[str, str]:
    addresses = {}
    for name in market.homes:
        result = market.org(name, "register", "--stake", "2", "--json")
        assert result.exit_code == 0, result.output
        payload = json.loads(result.stdout)
        assert market.store.has(payload["profile_cid"])
        addresses[name] = payload["address"]
    return addresses


def _play(market: CliMarket, names: list[str]) -> list[dict[str, object]]:
    actions: list[dict[str, object]] = []
    for _ in range(2):  # teachers publish in the first pass; students learn once their bundle is there
        for name in names:
            actions += market.join_once(name)
    return actions


def test_identity_is_encrypted_and_never_overwritten(cli_market: CliMarket) -> None:
    home = cli_market.homes["org-00000"]
    keystore = json.loads((home / "keystore.json").read_text())
    assert keystore["crypto"]["kdf"] == "scrypt"
    assert "ciphertext" in keystore["crypto"]
    again = cli_market.runner.invoke(
        app,
        ["org", "init", "org-00000", "--home", str(home)],
        env={"KNEXA_PASSWORD": PASSWORD},
    )
    assert again.exit_code == 1
    assert "refusing to overwrite" in again.output
    wrong = cli_market.runner.invoke(
        app,
        ["org", "register", "--home", str(home)],
        env={"KNEXA_PASSWORD": "wrong"},
    )
    assert wrong.exit_code == 1
    assert "cannot unlock" in wrong.output


def test_two_rounds_through_the_cli(cli_market: CliMarket) -> None:
    addresses = _register_all(cli_market)
    matchmaker = cli_market.matchmaker()
    names = list(cli_market.homes)
    for round_id in (1, 2):
        assert matchmaker.step().action == "opened"
        actions = _play(cli_market, names)
        assert (
            sorted(str(a["action"]) for a in actions if a["round"] == round_id)
            == ["published"] * 3 + ["reported"] * 3
        )
        reader = cli_market.chain.client()
        for state in reader.pairs(round_id):
            assert state.bundle_published
            assert state.gain_reported
        cli_market.chain.mine_until(reader.round(round_id).deadline_block + 1)
        assert matchmaker.step().action == "finalized"
    ledger, _ = matchmaker.sync()
    for record in ledger.rounds.values():
        for pair in record.pairs:
            assert pair.bundle_cid is not None
            assert cli_market.store.has(cid_text(pair.bundle_cid))
    verdicts = verify_rounds(
        cli_market.chain.client(), cli_market.store, cli_market.chain.deployment.deploy_block
    )
    assert [v.verdict for v in verdicts] == [MATCH, MATCH]

    status = cli_market.org("org-00001", "status", "--json")
    assert status.exit_code == 0, status.output
    report = json.loads(status.stdout)
    assert report["address"] == addresses["org-00001"]
    assert report["status"] == "active"
    assert report["withdrawable_eth"] > 0
    withdrawn = cli_market.org("org-00001", "withdraw", "--json")
    assert withdrawn.exit_code == 0, withdrawn.output
    assert json.loads(withdrawn.stdout)["withdrawn_eth"] == report["withdrawable_eth"]
    left = cli_market.org("org-00001", "exit", "--json")
    assert left.exit_code == 0, left.output
    assert json.loads(left.stdout)["status"] == "exiting"


def _runtime(market: CliMarket, name: str) -> OrgRuntime:
    identity = unlock(market.homes[name], PASSWORD)
    client = market.chain.client(identity.account)
    return OrgRuntime(
        client,
        market.store,
        identity.encryption_key,
        SyntheticLearner(name),
        identity.home,
        market.chain.deployment.deploy_block,
    )


def test_crash_between_learning_and_reporting_resumes_without_relearning(cli_market: CliMarket) -> None:
    _register_all(cli_market)
    cli_market.matchmaker().step()
    victim, *others = list(cli_market.homes)
    for name in others:
        cli_market.join_once(name)  # the others publish first, so the victim's bundle is waiting for it
    runtime = _runtime(cli_market, victim)

    def power_cut(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt("power cut")

    runtime.market.report_gain = power_cut  # type: ignore[method-assign,assignment]
    with contextlib.suppress(KeyboardInterrupt):
        runtime.step()
    saved = json.loads((cli_market.homes[victim] / "state.json").read_text())["reports"]["1"]
    assert runtime.learner.rounds_learnt == 1  # type: ignore[attr-defined]

    restarted = _runtime(cli_market, victim)
    actions = restarted.step()
    assert [action.kind for action in actions] == ["reported"]
    assert restarted.learner.rounds_learnt == 0  # type: ignore[attr-defined]  # not learnt twice
    gain = cli_market.chain.client().reported_gain(1, restarted.address)
    assert gain is not None
    assert from_wad(gain) == saved["gain"]
    assert restarted.step() == []  # nothing left to do, no duplicate submission


def test_an_organization_that_never_comes_back_is_slashed(cli_market: CliMarket) -> None:
    addresses = _register_all(cli_market)
    matchmaker = cli_market.matchmaker()
    matchmaker.step()
    absent = "org-00002"
    present = [name for name in cli_market.homes if name != absent]
    _play(cli_market, present)
    reader = cli_market.chain.client()
    cli_market.chain.mine_until(reader.round(1).deadline_block + 1)
    assert matchmaker.step().action == "finalized"
    events = cli_market.chain.events().read(cli_market.chain.deployment.deploy_block, names=["PairSettled"])
    offenders = {event.args["offender"] for event in events if event.args["slashed"] > 0}
    assert offenders == {addresses[absent]}
    for name in present:
        assert (
            reader.organization(addresses[name]).stake
            >= reader.parameters().min_stake - reader.parameters().exchange_fee
        )


def test_org_up_initialises_registers_and_joins_idempotently(cli_market: CliMarket, tmp_path: Path) -> None:
    home = tmp_path / "unattended"
    arguments = [
        *("org", "up", "org-00003", "--home", str(home), "--rpc", cli_market.chain.node.rpc_url),
        *(
            "--manifest",
            str(cli_market.manifest),
            "--store",
            str(cli_market.store.root),
            "--dev-account",
            "7",
        ),
        "--once",
    ]
    env = {"KNEXA_PASSWORD": PASSWORD}
    first = cli_market.runner.invoke(app, arguments, env=env)
    assert first.exit_code == 0, first.output
    address = unlock(home, PASSWORD).address
    reader = cli_market.chain.client()
    assert reader.organization(address).name == "org-00003"
    second = cli_market.runner.invoke(
        app, arguments, env=env
    )  # a restart: no second identity or registration
    assert second.exit_code == 0, second.output
    assert reader.organization_addresses().count(address) == 1


@pytest.mark.ipfs
def test_two_rounds_with_an_ipfs_node_as_the_store(
    dev_chain: DevChain, ipfs_node: IpfsNode, tmp_path: Path
) -> None:
    """The same organizations, with every document and bundle travelling through a real IPFS node."""
    runner = CliRunner()
    env = {"KNEXA_PASSWORD": PASSWORD}
    homes = {f"org-{index:05d}": tmp_path / f"org-{index}" for index in range(3)}
    init_and_register_through_cli(runner, dev_chain, ipfs_node.api_url, homes)
    with IpfsStore(ipfs_node.api_url, timeout_s=10.0) as store:
        matchmaker = matchmaker_for(dev_chain, store, seed=2)
        reader = dev_chain.client()
        for round_id in (1, 2):
            assert matchmaker.step().action == "opened"
            for _ in range(2):
                for home in homes.values():
                    joined = runner.invoke(
                        app, ["org", "join", "--home", str(home), "--once", "--json"], env=env
                    )
                    assert joined.exit_code == 0, joined.output
            assert all(pair.gain_reported for pair in reader.pairs(round_id))
            dev_chain.mine_until(reader.round(round_id).deadline_block + 1)
            assert matchmaker.step().action == "finalized"
        ledger, _ = matchmaker.sync()
        fetched = [
            cid_text(pair.bundle_cid or b"") for record in ledger.rounds.values() for pair in record.pairs
        ]
        assert len(fetched) == 6
        assert all(store.has(cid) for cid in fetched)
        verdicts = verify_rounds(reader, store, dev_chain.deployment.deploy_block)
    assert [verdict.verdict for verdict in verdicts] == [MATCH, MATCH]
