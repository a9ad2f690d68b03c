"""Two organizations with their own model directories (saved from the zoo, with different tokenizers)
and their own JSONL data join through the CLI and exchange on a real chain. Their tokenizers differ, so
teachers send text-only bundles, students distil the completions, and both say so in the log."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.world import build_federation_suite, config_for_scale
from chain.devchain import DevChain
from exchange.cid import cid_text
from exchange.local import LocalStore
from knexa.cli import app
from market.documents import ProfileDoc
from market.sealing import open_knowledge
from org.data import write_problems
from org.identity import unlock
from org.model import load_base, zoo_checkpoint
from tests.org.conftest import PASSWORD, matchmaker_for


@pytest.mark.slow
def test_two_own_model_organizations_exchange_text_only_bundles(
    dev_chain: DevChain, zoo_cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="org.lora")
    runner = CliRunner()
    env = {"KNEXA_PASSWORD": PASSWORD}
    models = {
        "acme": zoo_checkpoint("tiny:llama", tmp_path / "models" / "acme"),
        "globex": zoo_checkpoint("smoke:gpt2", tmp_path / "models" / "globex", vocab_size=600),
    }
    tokenizers = {name: load_base(str(path)).tokenizer_digest for name, path in models.items()}
    assert tokenizers["acme"] != tokenizers["globex"]

    suite = build_federation_suite(config_for_scale("tiny", n_orgs=2), 0)
    transfer = tmp_path / "transfer.jsonl"  # public: prompts acme trains on, so it has something to teach
    write_problems(transfer, suite.orgs[0].train[:6])
    manifest = tmp_path / "deployment.json"
    dev_chain.deployment.save(manifest)
    store = LocalStore(tmp_path / "store")
    homes: dict[str, Path] = {}
    addresses: dict[str, str] = {}
    for index, (name, org_data) in enumerate(zip(models, suite.orgs, strict=True)):
        data, validation = tmp_path / f"{name}.jsonl", tmp_path / f"{name}-val.jsonl"
        write_problems(data, org_data.train[:24])
        write_problems(validation, org_data.val[:4])
        homes[name] = tmp_path / "orgs" / name
        common = ["--home", str(homes[name]), "--json"]
        created = runner.invoke(
            app,
            [
                *("org", "init", name, "--rpc", dev_chain.node.rpc_url, "--manifest", str(manifest)),
                *("--store", str(store.root), "--dev-account", str(2 + index)),
                *("--model", str(models[name]), "--data", str(data), "--validation", str(validation)),
                *("--transfer", str(transfer), "--lora-rank", "4", "--max-len", "160"),
                *("--warmup-steps", "30", "--steps", "2", "--batch-size", "8", "--max-new-tokens", "32"),
                *common,
            ],
            env=env,
        )
        assert created.exit_code == 0, created.output
        registered = runner.invoke(app, ["org", "register", *common], env=env)
        assert registered.exit_code == 0, registered.output
        payload = json.loads(registered.stdout)
        addresses[name] = payload["address"]
        profile = ProfileDoc.from_bytes(store.get(payload["profile_cid"]))
        assert profile.base_model is not None
        assert profile.base_model.tokenizer == tokenizers[name]
        assert profile.base_model.weights == load_base(str(models[name])).weights_digest
    names = {address: name for name, address in addresses.items()}

    matchmaker = matchmaker_for(dev_chain, store, seed=1, round_blocks=60)
    assert matchmaker.step().action == "opened"
    actions: list[dict[str, object]] = []
    for _ in range(2):  # teachers publish in the first pass; students learn once their bundle is there
        for home in homes.values():
            joined = runner.invoke(app, ["org", "join", "--home", str(home), "--once", "--json"], env=env)
            assert joined.exit_code == 0, joined.output
            actions += [json.loads(line) for line in joined.stdout.splitlines() if line.startswith("{")]
    ledger, _ = matchmaker.sync()
    delivered = [pair for pair in ledger.rounds[1].pairs if pair.bundle_cid is not None]
    assert delivered, actions  # acme teaches the prompts it trained on
    for pair in delivered:
        teacher, student = names[pair.teacher], names[pair.student]
        assert pair.bundle_cid is not None
        key = unlock(homes[student], PASSWORD).encryption_key.secret
        bundle = open_knowledge(cid_text(pair.bundle_cid), store, key, pair.teacher, 1, pair.student)
        assert bundle.topk is None
        assert bundle.completions
        assert bundle.tokenizer.name == tokenizers[teacher]
        assert f"text-only bundle for {pair.student}" in caplog.text
        assert f"its tokenizer {tokenizers[student]} differs" in caplog.text
        assert f"text distillation from {teacher} (tokenizer {tokenizers[teacher]} differs" in caplog.text
        assert pair.gain is not None
    assert any(a["action"] == "reported" for a in actions)
