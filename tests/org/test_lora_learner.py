"""The real learner behind `--learner lora`: tiny models, private data, persisted adapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.data.templates import CATEGORIES
from agent.payload import BundleEntry, BundlePayload
from agent.reward import eq3_reward
from market.bundles import AdapterBundle
from org.bridge import payload_to_bundle
from org.lora import LoraLearner

SETTINGS = {"kind": "lora", "seed": 0, "scale": "tiny", "n_orgs": 3}


@pytest.mark.slow
def test_lora_learner_profiles_learns_and_resumes(zoo_cache: Path, tmp_path: Path) -> None:
    home = tmp_path / "org-00001"
    home.mkdir()
    learner = LoraLearner.from_settings("org-00001", home, SETTINGS)
    profile = learner.profile()
    assert profile.categories == CATEGORIES
    assert abs(sum(profile.histogram) - 1.0) < 1e-9
    assert profile.epsilon == profile.budget_spent == 1.0
    assert (home / "adapter.safetensors").exists()

    # A text-only bundle from a (pretend) teacher over real transfer prompts.
    items = list(learner.transfer.values())[:3]
    entries = tuple(
        BundleEntry(
            item.pid,
            item.prompt,
            "    return 0\n",
            np.zeros(0, np.int32),
            np.zeros((0, 1), np.int32),
            np.zeros((0, 1), np.float32),
        )
        for item in items
    )
    payload = BundlePayload("org0", "another-tokenizer", 1, entries)
    bundle = payload_to_bundle(payload, 1, "0x" + "11" * 20, "0x" + "22" * 20, vocab_size=512)
    nll_before = learner.agent.val_nll()
    result = learner.learn(bundle, "org-00000")
    # The reported gain is Eq. 3 of what the learner measured, the Pass@1 change only its log's.
    assert result.nll_before == nll_before
    assert result.nll_after == learner.agent.val_nll()
    assert result.nll_after != nll_before  # it trained
    assert result.bundle_kib == payload.nbytes() / 1024 > 0
    assert result.gain == eq3_reward(nll_before, result.nll_after, result.bundle_kib)
    assert result.pass1_gain is not None
    assert -1.0 <= result.pass1_gain <= 1.0
    adapter = AdapterBundle.from_bytes(result.adapter)
    assert adapter.peft_config["r"] == learner.spec.lora_rank
    assert adapter.weights

    restarted = LoraLearner.from_settings("org-00001", home, SETTINGS)
    assert restarted.rounds_learnt == 1
    for name, tensor in restarted.agent.adapter_state().items():
        assert np.array_equal(tensor.numpy(), adapter.weights[name])
    assert restarted.agent.val_nll() == result.nll_after  # the adapter it commits to is the one measured
