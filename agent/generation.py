"""Greedy batched completion and teacher-forced top-k log-probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from agent.models.tokenizer import Codec
from agent.training import IGNORE, Example, collate


@torch.no_grad()
def greedy_complete(
    model: nn.Module,
    codec: Codec,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 64,
    batch_size: int = 32,
    max_len: int = 160,
) -> list[str]:
    """Greedy completion of each prompt (left-padded batches, KV cache), cut to the function body.
    Prompts are written as the codec says (an instruct model's chat format, else as they are)."""
    model.eval()
    out: list[str] = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        chunk = [codec.encode(codec.prompt_text(p))[-(max_len - 8) :] for p in batch]
        width = max(len(c) for c in chunk)
        new = max(1, min(max_new_tokens, max_len - width))
        ids = torch.full((len(chunk), width), codec.pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, c in enumerate(chunk):
            ids[i, width - len(c) :] = torch.tensor(c)
            mask[i, width - len(c) :] = 1
        gen = model.generate(  # type: ignore[operator]
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=new,
            do_sample=False,
            eos_token_id=codec.eos_id,
            pad_token_id=codec.pad_id,
        )
        for prompt, row in zip(batch, gen[:, width:].tolist(), strict=True):
            if codec.eos_id in row:
                row = row[: row.index(codec.eos_id)]
            out.append(codec.completion_of(prompt, codec.decode(row)))
    return out


@torch.no_grad()
def topk_logprobs(
    model: nn.Module,
    codec: Codec,
    prompt: str,
    completion: str,
    k: int,
    max_len: int = 160,
    *,
    noise: float = 0.0,
    noise_seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Teacher-forced top-k over the completion tokens (and the closing EOS).

    Returns ``(token_ids[L], topk_ids[L, k], topk_logprobs[L, k])`` where row ``i`` is the
    model's distribution for completion token ``i`` given the prompt and tokens ``< i``.
    ``noise`` > 0 adds seeded Gaussian noise of that std to the logits first (a low-quality
    teacher's noisier distributions).
    """
    p = codec.encode(codec.prompt_text(prompt))
    c = [*codec.encode(codec.target_text(prompt, completion)), codec.eos_id]
    ids = (p + c)[:max_len]
    n_c = len(ids) - len(p)
    if n_c <= 0:
        raise ValueError("prompt fills the whole context; nothing to score")
    logits = model(input_ids=torch.tensor([ids])).logits[0][len(p) - 1 : len(ids) - 1].float()
    if noise > 0:
        gen = torch.Generator().manual_seed(noise_seed)
        logits = logits + noise * torch.randn(logits.shape, generator=gen)
    logp = torch.log_softmax(logits, dim=-1)
    vals, idx = torch.topk(logp, k, dim=-1)
    return (
        np.asarray(ids[len(p) :], dtype=np.int32),
        idx.numpy().astype(np.int32),
        vals.numpy().astype(np.float32),
    )


@torch.no_grad()
def completion_nll(model: nn.Module, examples: Sequence[Example], pad_id: int, batch_size: int = 32) -> float:
    """Mean per-token NLL (nats) of the labelled tokens of ``examples``: the sum of every completion
    token's negative log-likelihood divided by the number of such tokens."""
    if not examples:
        raise ValueError("no examples to score")
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start : start + batch_size], pad_id)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        labels = batch["labels"][:, 1:]
        nll = nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.size(-1)).float(),
            labels.reshape(-1),
            ignore_index=IGNORE,
            reduction="sum",
        )
        total += float(nll)
        count += int((labels != IGNORE).sum())
    return total / count
