"""Sample bundles shared by the bundle and sealing tests (real arrays, deterministic seeds)."""

from __future__ import annotations

from typing import Any

import numpy as np
from eth_account import Account

from exchange.canonical import Json
from market.bundles import AdapterBundle, BaseModelId, KnowledgeBundle, TokenizerId, TopK, encode_container

TEACHER_KEY = b"\x11" * 32
STUDENT_KEY = b"\x22" * 32
TEACHER = Account.from_key(TEACHER_KEY).address
STUDENT = Account.from_key(STUDENT_KEY).address
TOKENIZER = TokenizerId("smollm2-135m", 49_152, "9f" * 32)


def topk(prompts: int = 3, positions: int = 20, k: int = 8, seed: int = 0) -> TopK:
    rng = np.random.default_rng(seed)
    per_prompt = []
    for _ in range(prompts):
        logits = rng.standard_normal((positions, k))
        logprobs = -np.sort(np.abs(logits), axis=1)
        per_prompt.append(
            (rng.integers(0, 49_152, positions), rng.integers(0, 49_152, (positions, k)), logprobs)
        )
    return TopK.from_prompts(per_prompt, TOKENIZER.vocab_size)


def knowledge(**changes: Any) -> KnowledgeBundle:
    fields: dict[str, Any] = {
        "round": 4,
        "teacher": TEACHER,
        "student": STUDENT,
        "tokenizer": TOKENIZER,
        "prompt_ids": ("HumanEval/0", "HumanEval/1", "HumanEval/2"),
        "topk": topk(),
        "completions": ("return 1", "", "return [x for x in y]"),
    }
    fields.update(changes)
    return KnowledgeBundle(**fields)


def lora_weights(rank: int = 4) -> dict[str, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(1)
    prefix = "base_model.model.model.layers.0.self_attn"
    return {
        f"{prefix}.q_proj.lora_A.weight": rng.standard_normal((rank, 64)).astype(np.float32),
        f"{prefix}.q_proj.lora_B.weight": np.zeros((64, rank), np.float32),
        f"{prefix}.v_proj.lora_A.weight": rng.standard_normal((rank, 64)).astype(np.float32),
        f"{prefix}.v_proj.lora_B.weight": rng.standard_normal((32, rank)).astype(np.float16),
    }


PEFT: dict[str, Json] = {
    "peft_type": "LORA",
    "r": 4,
    "lora_alpha": 8,
    "lora_dropout": 0.0,
    "target_modules": ["q_proj", "v_proj"],
}


def adapter(**changes: Any) -> AdapterBundle:
    fields: dict[str, Any] = {
        "base_model": BaseModelId("SmolLM2-135M-Instruct", "q4_1-gguf-sha256:ab12"),
        "peft_config": PEFT,
        "weights": lora_weights(),
    }
    fields.update(changes)
    return AdapterBundle(**fields)


def knowledge_payload(meta_changes: dict[str, Any], tensors: dict[str, Any] | None = None) -> bytes:
    """A payload written by hand, as a faulty or hostile teacher could."""
    bundle = knowledge()
    meta = bundle._meta()
    meta.update(meta_changes)
    assert bundle.topk is not None
    default = {
        "input_ids": bundle.topk.input_ids,
        "topk_ids": bundle.topk.token_ids,
        "topk_logprobs": bundle.topk.logprobs,
        "offsets": bundle.topk.offsets,
    }
    return encode_container(meta, default if tensors is None else tensors)
