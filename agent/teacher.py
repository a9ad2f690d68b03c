"""Teacher role: answer the public transfer set and package the answers as a bundle payload.

Only completions that pass the problem's *public* example tests are kept, so a teacher
cannot pass its failures on. Logits are taken teacher-forced over the teacher's own
greedy completion (plus EOS), so every top-k row lines up with a token the student will
see in the same position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from torch import nn

from agent.data.problems import prompt_key
from agent.data.splits import TransferItem
from agent.generation import greedy_complete, topk_logprobs
from agent.models.tokenizer import Codec
from agent.payload import BundleEntry, BundlePayload
from agent.sandbox import Evaluator, Program

BundleMode = Literal["logits", "text"]


@dataclass(frozen=True)
class TeacherConfig:
    top_k: int = 8
    mode: BundleMode = "logits"  # "logits": completions + top-k (same tokenizer); "text": completions only
    max_new_tokens: int = 64
    max_len: int = 160
    logit_noise: float = 0.0  # std of Gaussian noise on the logits (a low-quality teacher)


def public_program(item: TransferItem, completion: str) -> Program:
    return Program(item.prompt + completion, "\n".join(item.public_tests) + "\n")


def targeted_prompts(
    transfer: Sequence[TransferItem], histogram: Mapping[str, float], limit: int | None
) -> list[TransferItem]:
    """The transfer prompts a teacher answers for one student: the categories of the student's
    (public, DP-released) histogram in decreasing weight first (ties in transfer order), each
    category's prompts in transfer order, cut to ``limit`` prompts (``None``: all of them)."""
    first_seen: dict[str, int] = {}
    for i, item in enumerate(transfer):
        first_seen.setdefault(item.category, i)
    order = sorted(first_seen, key=lambda c: (-float(histogram.get(c, 0.0)), first_seen[c]))
    ranked = [item for c in order for item in transfer if item.category == c]
    return ranked if limit is None else ranked[: max(0, limit)]


def make_bundle(
    model: nn.Module,
    codec: Codec,
    teacher: str,
    transfer: Sequence[TransferItem],
    evaluator: Evaluator,
    cfg: TeacherConfig | None = None,
) -> BundlePayload:
    """Greedy-complete every transfer prompt, keep those passing the public tests, add top-k."""
    cfg = cfg or TeacherConfig()
    if cfg.top_k < 1:
        raise ValueError("top_k must be >= 1")
    comps = greedy_complete(
        model, codec, [t.prompt for t in transfer], max_new_tokens=cfg.max_new_tokens, max_len=cfg.max_len
    )
    results = evaluator.run_many([public_program(t, c) for t, c in zip(transfer, comps, strict=True)])
    entries: list[BundleEntry] = []
    empty_ids = np.zeros((0, cfg.top_k), np.int32)
    empty_lp = np.zeros((0, cfg.top_k), np.float32)
    for item, comp, res in zip(transfer, comps, results, strict=True):
        if not res.passed or not comp.strip():
            continue
        if cfg.mode == "logits":
            tok, ids, lps = topk_logprobs(
                model,
                codec,
                item.prompt,
                comp,
                cfg.top_k,
                cfg.max_len,
                noise=cfg.logit_noise,
                noise_seed=int(prompt_key(teacher + "/" + item.prompt + comp), 16),
            )
            entries.append(BundleEntry(item.pid, item.prompt, comp, tok, ids, lps))
        else:
            entries.append(
                BundleEntry(item.pid, item.prompt, comp, np.zeros(0, np.int32), empty_ids, empty_lp)
            )
    stats = {
        "prompts": float(len(transfer)),
        "kept": float(len(entries)),
        "keep_rate": len(entries) / len(transfer) if transfer else 0.0,
    }
    return BundlePayload(teacher, codec.identity, cfg.top_k, tuple(entries), stats)
