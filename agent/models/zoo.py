"""A heterogeneous zoo of tiny causal LMs built from configs, pretrained once and cached.

Three families (Llama-, GPT-2- and GPT-NeoX-style) of different depth and width. Base
pretraining is full-parameter next-token training on the public corpus; the result is
saved (safetensors) under the cache dir, keyed by a hash of the spec, the tokenizer, the
corpus, the step budget and the seed, so a changed input can never reuse a stale model.
LoRA ranks are chosen per model: narrower models get relatively larger ranks.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
)

from agent.cache import cache_dir
from agent.data.problems import Problem
from agent.models.tokenizer import Codec
from agent.training import encode_example, make_optimizer, train_steps

Family = Literal["llama", "gpt2", "neox"]

LORA_TARGETS: dict[str, list[str]] = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: Family
    hidden: int
    layers: int
    heads: int
    intermediate: int
    lora_rank: int
    max_len: int = 160


ZOO: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec("llama-s", "llama", hidden=128, layers=4, heads=4, intermediate=320, lora_rank=16),
        ModelSpec("gpt2-s", "gpt2", hidden=112, layers=3, heads=4, intermediate=448, lora_rank=16),
        ModelSpec("neox-s", "neox", hidden=144, layers=2, heads=4, intermediate=576, lora_rank=12),
    )
}

# For tests: seconds, not minutes.
TINY_ZOO: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec("llama-t", "llama", hidden=64, layers=2, heads=2, intermediate=128, lora_rank=8),
        ModelSpec("gpt2-t", "gpt2", hidden=64, layers=2, heads=2, intermediate=256, lora_rank=8),
        ModelSpec("neox-t", "neox", hidden=64, layers=1, heads=2, intermediate=256, lora_rank=8),
    )
}


def build_model(spec: ModelSpec, codec: Codec, seed: int) -> PreTrainedModel:
    """A randomly initialised model of ``spec`` (seeded), fp32, in eval mode."""
    torch.manual_seed(seed)
    vocab, eos, pad = codec.vocab_size, codec.eos_id, codec.pad_id
    model: PreTrainedModel
    if spec.family == "llama":
        model = LlamaForCausalLM(
            LlamaConfig(
                vocab_size=vocab,
                hidden_size=spec.hidden,
                num_hidden_layers=spec.layers,
                num_attention_heads=spec.heads,
                num_key_value_heads=spec.heads,
                intermediate_size=spec.intermediate,
                max_position_embeddings=spec.max_len,
                tie_word_embeddings=True,
                bos_token_id=eos,
                eos_token_id=eos,
                pad_token_id=pad,
            )
        )
    elif spec.family == "gpt2":
        model = GPT2LMHeadModel(
            GPT2Config(
                vocab_size=vocab,
                n_embd=spec.hidden,
                n_layer=spec.layers,
                n_head=spec.heads,
                n_inner=spec.intermediate,
                n_positions=spec.max_len,
                resid_pdrop=0.0,
                embd_pdrop=0.0,
                attn_pdrop=0.0,
                bos_token_id=eos,
                eos_token_id=eos,
                pad_token_id=pad,
            )
        )
    elif spec.family == "neox":
        model = GPTNeoXForCausalLM(
            GPTNeoXConfig(
                vocab_size=vocab,
                hidden_size=spec.hidden,
                num_hidden_layers=spec.layers,
                num_attention_heads=spec.heads,
                intermediate_size=spec.intermediate,
                max_position_embeddings=spec.max_len,
                tie_word_embeddings=False,
                bos_token_id=eos,
                eos_token_id=eos,
                pad_token_id=pad,
            )
        )
    else:  # pragma: no cover - Literal guards this
        raise ValueError(f"unknown family {spec.family!r}")
    model.eval()  # type: ignore[no-untyped-call]
    return model


def n_params(model: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def attach_lora(model: PreTrainedModel, spec: ModelSpec, seed: int) -> PeftModel:
    """Freeze the base and add a fresh, seeded LoRA adapter of the spec's rank."""
    torch.manual_seed(seed)
    cfg = LoraConfig(
        r=spec.lora_rank,
        lora_alpha=2 * spec.lora_rank,
        lora_dropout=0.0,
        target_modules=LORA_TARGETS[spec.family],
        fan_in_fan_out=spec.family == "gpt2",  # GPT-2 uses Conv1D (transposed) layers
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, cfg)
    peft_model.eval()
    return peft_model


@dataclass(frozen=True)
class PretrainConfig:
    steps: int = 300
    batch_size: int = 16
    lr: float = 2e-3
    seed: int = 0


def _cache_key(spec: ModelSpec, codec: Codec, corpus: Sequence[Problem], cfg: PretrainConfig) -> str:
    h = hashlib.sha256()
    h.update(
        json.dumps(
            {"spec": asdict(spec), "pretrain": asdict(cfg), "tok": codec.identity}, sort_keys=True
        ).encode()
    )
    for p in corpus:
        h.update(p.prompt.encode())
        h.update(p.solution.encode())
    return h.hexdigest()[:16]


def pretrain(
    spec: ModelSpec,
    codec: Codec,
    corpus: Sequence[Problem],
    cfg: PretrainConfig,
    on_step: Callable[[int], None] | None = None,
) -> PreTrainedModel:
    """Full-parameter pretraining of a fresh model on the public corpus."""
    model = build_model(spec, codec, cfg.seed)
    examples = [encode_example(codec, p.prompt, p.solution, spec.max_len) for p in corpus]
    opt = make_optimizer(model, cfg.lr)
    chunk = max(1, cfg.steps // 20)
    done = 0
    while done < cfg.steps:
        n = min(chunk, cfg.steps - done)
        train_steps(
            model,
            examples,
            steps=n,
            batch_size=cfg.batch_size,
            optimizer=opt,
            pad_id=codec.pad_id,
            seed=cfg.seed * 1_000_003 + done,
        )
        done += n
        if on_step is not None:
            on_step(n)
    return model


def load_or_pretrain(
    spec: ModelSpec,
    codec: Codec,
    corpus: Sequence[Problem],
    cfg: PretrainConfig,
    *,
    cache: Path | None = None,
    on_step: Callable[[int], None] | None = None,
) -> tuple[PreTrainedModel, bool]:
    """The cached pretrained base model (``(model, True)`` on a cache hit)."""
    path = (cache or cache_dir()) / "zoo" / f"{spec.name}-{_cache_key(spec, codec, corpus, cfg)}"
    model_cls: type[PreTrainedModel] = {
        "llama": LlamaForCausalLM,
        "gpt2": GPT2LMHeadModel,
        "neox": GPTNeoXForCausalLM,
    }[spec.family]
    if (path / "model.safetensors").exists():
        loaded = model_cls.from_pretrained(str(path), dtype=torch.float32)
        loaded.eval()  # type: ignore[no-untyped-call]
        return loaded, True
    model = pretrain(spec, codec, corpus, cfg, on_step)
    tmp = path.with_name(path.name + ".tmp")
    model.save_pretrained(str(tmp))
    if path.exists():  # another process finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.replace(path)
    return model, False
