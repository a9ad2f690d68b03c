"""Supervised training on prompt -> completion pairs at a fixed optimizer-step budget.

Prompt and completion are tokenised *separately* and concatenated, and only completion
tokens (plus the closing EOS) carry a loss. Tokenising the joined text instead lets BPE
merge across the prompt/completion boundary, and the model then never learns to start a
completion from the exact token sequence it sees at inference (greedy decoding stops at
once). The same helper is used by pretraining, local LoRA training and distillation.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from agent.models.tokenizer import Codec

IGNORE = -100


@dataclass(frozen=True)
class Example:
    """One training sequence: token ids and labels (``IGNORE`` on prompt positions)."""

    ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def completion_positions(self) -> list[int]:
        return [i for i, lab in enumerate(self.labels) if lab != IGNORE]


@dataclass(frozen=True)
class Budget:
    """Compute per round: the same number of optimizer steps of the same batch size for every method."""

    steps: int = 40
    batch_size: int = 16
    lr: float = 3e-3


def encode_example(codec: Codec, prompt: str, completion: str, max_len: int) -> Example:
    """Encode prompt and completion separately; loss only on the completion and EOS. An instruct
    model's codec writes both in its chat format (`Codec.prompt_text`, `Codec.target_text`)."""
    p = codec.encode(codec.prompt_text(prompt))
    c = [*codec.encode(codec.target_text(prompt, completion)), codec.eos_id]
    ids = (p + c)[:max_len]
    labels = ([IGNORE] * len(p) + c)[:max_len]
    return Example(tuple(ids), tuple(labels))


def collate(batch: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch; labels are shifted inside the model (HF convention)."""
    width = max(len(e.ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e.ids)
        ids[i, :n] = torch.tensor(e.ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def shifted_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross entropy over labelled positions."""
    return nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1), ignore_index=IGNORE
    )


class BatchSampler:
    """Seeded sampling without replacement within an epoch, reshuffled each epoch."""

    def __init__(self, n: int, seed: int) -> None:
        if n < 1:
            raise ValueError("cannot sample from an empty data set")
        self.n = n
        self.rng = random.Random(seed)
        self.order: list[int] = []

    def take(self, k: int) -> list[int]:
        out: list[int] = []
        while len(out) < k:
            if not self.order:
                self.order = list(range(self.n))
                self.rng.shuffle(self.order)
            out.append(self.order.pop())
        return out


def make_optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)


def train_steps(
    model: nn.Module,
    examples: Sequence[Example],
    *,
    steps: int,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    pad_id: int,
    seed: int,
) -> list[float]:
    """Run exactly ``steps`` optimizer steps of next-token CE; returns the per-step losses."""
    sampler = BatchSampler(len(examples), seed)
    model.train()
    losses: list[float] = []
    for _ in range(steps):
        batch = collate([examples[i] for i in sampler.take(batch_size)], pad_id)
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        loss = shifted_ce(out.logits, batch["labels"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses
