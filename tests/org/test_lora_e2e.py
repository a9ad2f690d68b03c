"""End to end with real models: three organizations with tiny LoRA agents, two rounds, through the CLI,
on a real Anvil chain with every document and bundle travelling through a real IPFS node."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.data.splits import TransferItem
from agent.reward import eq3_reward
from agent.sandbox import Evaluator
from agent.teacher import public_program
from agent.world import build_federation_suite, config_for_scale
from chain.devchain import DevChain
from chain.units import from_wad, to_wad
from exchange.cid import cid_text
from exchange.ipfs import IpfsStore
from exchange.local import LocalStore
from exchange.node import IpfsNode
from knexa.cli import app
from market.bundles import AdapterBundle
from market.sealing import open_knowledge
from matchmaker.audit import MATCH, verify_rounds
from org.identity import unlock
from tests.org.conftest import PASSWORD, init_and_register_through_cli, matchmaker_for

ROUND_BLOCKS = 60  # the test mines no blocks while organizations work, so this is never reached


def _transfer_items() -> dict[str, TransferItem]:
    suite = build_federation_suite(config_for_scale("tiny", n_orgs=3), 0)
    return {item.pid: item for item in suite.transfer}


@pytest.mark.slow
@pytest.mark.ipfs
def test_three_lora_organizations_trade_real_bundles_for_two_rounds(
    dev_chain: DevChain, ipfs_node: IpfsNode, zoo_cache: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    env = {"KNEXA_PASSWORD": PASSWORD}
    zoo = runner.invoke(app, ["agent", "build-zoo", "--scale", "tiny", "--json"])
    assert zoo.exit_code == 0, zoo.output
    assert {model["family"] for model in json.loads(zoo.stdout)["models"]} == {"llama", "gpt2", "neox"}

    homes = {f"org-{index:05d}": tmp_path / f"org-{index}" for index in range(3)}
    lora = ("--learner", "lora", "--scale", "tiny")
    addresses = init_and_register_through_cli(runner, dev_chain, ipfs_node.api_url, homes, *lora)
    names = {address: name for name, address in addresses.items()}
    transfer = _transfer_items()
    evaluator = Evaluator(workers=1)

    with IpfsStore(ipfs_node.api_url, timeout_s=30.0) as store:
        matchmaker = matchmaker_for(dev_chain, store, seed=3, round_blocks=ROUND_BLOCKS)
        reader = dev_chain.client()
        published = 0
        eq3_reports = 0
        for round_id in (1, 2):
            assert matchmaker.step().action == "opened"
            actions: list[dict[str, object]] = []
            for _ in range(2):  # teachers publish in the first pass; students learn once it is there
                for home in homes.values():
                    joined = runner.invoke(
                        app, ["org", "join", "--home", str(home), "--once", "--json"], env=env
                    )
                    assert joined.exit_code == 0, joined.output
                    actions += [
                        json.loads(line) for line in joined.stdout.splitlines() if line.startswith("{")
                    ]
            kinds = sorted(str(a["action"]) for a in actions if a["round"] == round_id)
            on_chain = reader.pairs(round_id)
            ledger, _ = matchmaker.sync()
            assert len(on_chain) == len(ledger.rounds[round_id].pairs) == 3
            for chain_pair, pair in zip(on_chain, ledger.rounds[round_id].pairs, strict=True):
                if pair.bundle_cid is None:  # a teacher with nothing passing its public tests says so
                    assert pair.gain is None
                    assert ledger.rounds[round_id].finalized or not chain_pair.bundle_published
                    continue
                published += 1
                assert chain_pair.gain_reported
                assert pair.gain is not None
                assert -1.0 <= from_wad(pair.gain) <= 1.0
                # The student's copy: sealed to it, signed by the teacher, real completions that pass
                # the public tests of real transfer prompts, top-k logits in the shared tokenizer.
                student = unlock(homes[names[pair.student]], PASSWORD)
                bundle_cid = cid_text(pair.bundle_cid)
                assert store.has(bundle_cid)
                bundle = open_knowledge(
                    bundle_cid, store, student.encryption_key.secret, pair.teacher, round_id, pair.student
                )
                assert bundle.completions
                assert bundle.topk is not None
                programs = [
                    public_program(transfer[pid], completion)
                    for pid, completion in zip(bundle.prompt_ids, bundle.completions, strict=True)
                ]
                assert all(result.passed for result in evaluator.run_many(programs))
                # The adapter commitment on chain is the student's real LoRA adapter (kept private).
                assert pair.adapter_cid is not None
                adapter = LocalStore(student.home / "private").get(cid_text(pair.adapter_cid))
                assert AdapterBundle.from_bytes(adapter).weights
                # The gain on chain is the paper's Eq. 3 reward the learner measured: its validation
                # NLL reduction less the bundle-size charge (to the wei), not a Pass@1 change.
                state = json.loads((student.home / "state.json").read_text())
                measured = state["reports"][str(round_id)]
                inputs = measured["measured"]
                assert pair.gain == to_wad(measured["gain"])
                assert measured["gain"] == eq3_reward(
                    inputs["nll_before"], inputs["nll_after"], inputs["bundle_kib"]
                )
                assert inputs["bundle_kib"] > 0
                assert "pass1_gain" in inputs
                eq3_reports += 1
            delivered = sum(p.bundle_published for p in on_chain)
            assert kinds.count("published") == kinds.count("reported") == delivered
            assert kinds.count("no-bundle") == 3 - delivered
            dev_chain.mine_until(reader.round(round_id).deadline_block + 1)
            assert matchmaker.step().action == "finalized"
        assert published >= 2  # the tiny agents really teach: most pairs carry a bundle
        assert eq3_reports == published
        verdicts = verify_rounds(reader, store, dev_chain.deployment.deploy_block)
    assert [verdict.verdict for verdict in verdicts] == [MATCH, MATCH]

    settled = dev_chain.events().read(dev_chain.deployment.deploy_block, names=["PairSettled"])
    ledger, _ = matchmaker.sync()
    silent = {
        pair.teacher
        for round_id in (1, 2)
        for pair in ledger.rounds[round_id].pairs
        if pair.bundle_cid is None
    }
    assert {event.args["offender"] for event in settled if event.args["slashed"] > 0} == silent
    for name, address in addresses.items():
        status = runner.invoke(app, ["org", "status", "--home", str(homes[name]), "--json"], env=env)
        assert status.exit_code == 0, status.output
        report = json.loads(status.stdout)
        assert report["address"] == address
        assert report["status"] == "active"
