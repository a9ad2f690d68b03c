"""Student role: distil a bundle payload into the LoRA adapter at a fixed step budget.

Each optimizer step sees ``batch_size`` sequences, the same as a local-only step, so a
distillation round costs the same compute as a local round: ``n_kd`` sequences of the batch
are bundle data, the rest private data (local CE), where ``n_kd = min(kd_per_batch,
batch_size // 2, |bundle|)`` grows with the bundle's size. The loss is::

    (1 - alpha) * CE_private + alpha * T^2 * KL(p_teacher^T || q_student^T)     (logits)
    (1 - alpha) * CE_private + alpha * CE(teacher completion)                   (text)

``p_teacher^T`` is the teacher's top-k renormalised at temperature T; ``q_student^T`` is
the student's full-vocabulary softmax at T, read at the same k ids. Because ``q`` is read
from the full softmax (not renormalised over k), the KL is >= 0 and is minimised only
when the student puts all its mass on the teacher's top-k in the teacher's proportions.
Logit mode needs the teacher's tokenizer; text mode works across tokenizers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from agent.models.tokenizer import Codec
from agent.payload import BundlePayload
from agent.training import IGNORE, BatchSampler, Example, collate, encode_example, shifted_ce


@dataclass(frozen=True)
class Schedule:
    """A value over the steps of one distillation run: constant, linear or cosine from start to end."""

    start: float
    end: float | None = None
    kind: Literal["constant", "linear", "cosine"] = "constant"

    def at(self, step: int, total: int) -> float:
        if self.kind == "constant" or self.end is None or total <= 1:
            return self.start
        frac = step / (total - 1)
        if self.kind == "linear":
            return self.start + (self.end - self.start) * frac
        return self.end + (self.start - self.end) * 0.5 * (1 + math.cos(math.pi * frac))


@dataclass(frozen=True)
class DistillConfig:
    alpha: Schedule = field(default_factory=lambda: Schedule(0.5))
    temperature: Schedule = field(default_factory=lambda: Schedule(1.0))
    mode: Literal["auto", "logits", "text"] = "auto"
    # Bundle sequences per batch: min(kd_per_batch, batch_size // 2, |bundle|), so a small bundle
    # takes a small share of each batch instead of being replayed many times over.
    kd_per_batch: int = 8


@dataclass(frozen=True)
class KDExample:
    """A bundle sequence: ids/labels plus per-position teacher top-k (empty in text mode)."""

    example: Example
    topk_ids: torch.Tensor  # [L_completion, k] long
    topk_logprobs: torch.Tensor  # [L_completion, k] float


def bundle_examples(payload: BundlePayload, codec: Codec, mode: str, max_len: int) -> list[KDExample]:
    """Student-side training sequences for the bundle (entries that do not fit are dropped)."""
    out: list[KDExample] = []
    for e in payload.entries:
        if mode == "logits":
            p = codec.encode(codec.prompt_text(e.prompt))
            c = [int(t) for t in e.token_ids]
            if len(p) + len(c) > max_len or not c:
                continue
            ex = Example(tuple(p + c), tuple([IGNORE] * len(p) + c))
            out.append(
                KDExample(
                    ex,
                    torch.from_numpy(e.topk_ids.astype("int64")),
                    torch.from_numpy(e.topk_logprobs.astype("float32")),
                )
            )
        else:
            ex = encode_example(codec, e.prompt, e.completion, max_len)
            out.append(KDExample(ex, torch.zeros(0, dtype=torch.long), torch.zeros(0)))
    return out


def resolve_mode(payload: BundlePayload, codec: Codec, requested: str) -> str:
    """``logits`` only when the payload carries them and the tokenizers match."""
    usable = payload.has_logits and payload.tokenizer_id == codec.identity
    if requested == "logits" and not usable:
        raise ValueError("logit distillation needs a logit bundle made with the same tokenizer")
    if requested == "auto":
        return "logits" if usable else "text"
    return requested


def topk_kl(logits: torch.Tensor, batch: Sequence[KDExample], temperature: float) -> torch.Tensor:
    """Mean over completion positions of KL(teacher top-k at T || student at T)."""
    terms: list[torch.Tensor] = []
    for row, kd in enumerate(batch):
        pos = kd.example.completion_positions
        if not pos:
            continue
        idx = torch.tensor(pos) - 1  # logits at t predict token t + 1
        student = torch.log_softmax(logits[row, idx] / temperature, dim=-1)
        q = student.gather(-1, kd.topk_ids[: len(pos)])
        p = torch.softmax(kd.topk_logprobs[: len(pos)] / temperature, dim=-1)
        terms.append((p * (torch.log(p.clamp_min(1e-12)) - q)).sum(-1))
    return torch.cat(terms).mean()


@dataclass
class DistillStats:
    mode: str
    losses: list[float]
    bundle_examples: int


def distil(
    model: nn.Module,
    codec: Codec,
    payload: BundlePayload,
    private: Sequence[Example],
    *,
    steps: int,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    cfg: DistillConfig,
    seed: int,
    max_len: int = 160,
) -> DistillStats:
    """Run exactly ``steps`` optimizer steps of the mixed loss (local CE only if the bundle is empty)."""
    mode = resolve_mode(payload, codec, cfg.mode)
    kd = bundle_examples(payload, codec, mode, max_len)
    priv_sampler = BatchSampler(len(private), seed)
    kd_sampler = BatchSampler(len(kd), seed + 1) if kd else None
    n_kd = min(cfg.kd_per_batch, batch_size // 2, len(kd)) if kd else 0
    params = [p for p in model.parameters() if p.requires_grad]
    losses: list[float] = []
    model.train()
    for step in range(steps):
        alpha = cfg.alpha.at(step, steps) if kd else 0.0
        temp = cfg.temperature.at(step, steps)
        priv = collate([private[i] for i in priv_sampler.take(batch_size - n_kd)], codec.pad_id)
        loss = shifted_ce(
            model(input_ids=priv["input_ids"], attention_mask=priv["attention_mask"]).logits, priv["labels"]
        )
        if kd_sampler is not None:
            chosen = [kd[i] for i in kd_sampler.take(n_kd)]
            kb = collate([c.example for c in chosen], codec.pad_id)
            logits = model(input_ids=kb["input_ids"], attention_mask=kb["attention_mask"]).logits
            if mode == "logits":
                kd_loss = temp * temp * topk_kl(logits, chosen, temp)
            else:
                kd_loss = shifted_ce(logits, kb["labels"])
            loss = (1 - alpha) * loss + alpha * kd_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
    model.eval()
    return DistillStats(mode if kd else "local", losses, len(kd))
