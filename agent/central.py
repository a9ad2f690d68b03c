"""The `central-kd` baseline: every student distils from the average of all teachers' answers.

This is the server-side consensus of FedMD-style federated distillation, written for generation:
for each public transfer prompt that at least one teacher answered with a completion passing the
prompt's public tests, the server keeps the completion most teachers agree on (ties go to the
first teacher in federation order); every teacher then scores that one completion teacher-forced,
and the consensus distribution at each position is the plain average of the teachers' renormalised
top-k distributions, cut back to the top k. The average is taken over *all* teachers, specialists
and non-specialists alike, which is exactly why it is the paper's collapsing baseline: a sharp
specialist is diluted by peers that do not know the category.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from agent.agent import Agent
from agent.data.splits import TransferItem
from agent.generation import topk_logprobs
from agent.payload import BundleEntry, BundlePayload

CENTRAL_TEACHER = "central"


def average_topk(
    rows: Sequence[tuple[np.ndarray, np.ndarray]], vocab_size: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Average teachers' top-k rows ``(ids[L, k], logprobs[L, k])`` in probability space.

    Each teacher's top-k is renormalised to a distribution first (mass outside its top k is
    unknown, so it counts as zero); the mean is cut to its own top ``k`` and returned as
    ``(ids[L, k], logprobs[L, k])`` renormalised over those ``k``.
    """
    if not rows:
        raise ValueError("nothing to average")
    length = rows[0][0].shape[0]
    mean = torch.zeros((length, vocab_size), dtype=torch.float64)
    for ids, logprobs in rows:
        if ids.shape[0] != length:
            raise ValueError("teachers scored sequences of different lengths")
        probs = torch.softmax(torch.from_numpy(logprobs.astype(np.float64)), dim=-1)
        mean.scatter_add_(1, torch.from_numpy(ids.astype(np.int64)), probs)
    mean /= len(rows)
    top = torch.topk(mean, k, dim=-1)
    renormalised = top.values / top.values.sum(dim=-1, keepdim=True)
    return top.indices.numpy().astype(np.int32), torch.log(renormalised).numpy().astype(np.float32)


def consensus_payload(
    teachers: Sequence[Agent],
    payloads: Mapping[str, BundlePayload],
    transfer: Sequence[TransferItem],
    top_k: int,
    max_len: int,
) -> BundlePayload:
    """The central server's bundle for a round (see the module docstring)."""
    if not teachers:
        raise ValueError("central distillation needs at least one teacher")
    codec = teachers[0].codec
    entries: list[BundleEntry] = []
    for item in transfer:
        votes = Counter(
            entry.completion
            for teacher in teachers
            for entry in payloads[teacher.name].entries
            if entry.pid == item.pid
        )
        if not votes:
            continue
        top = max(votes.values())
        completion = next(c for c, n in votes.items() if n == top)  # Counter keeps first-seen order
        scored = [topk_logprobs(t.model, codec, item.prompt, completion, top_k, max_len) for t in teachers]
        ids, logprobs = average_topk([(s[1], s[2]) for s in scored], codec.vocab_size, top_k)
        entries.append(BundleEntry(item.pid, item.prompt, completion, scored[0][0], ids, logprobs))
    stats = {
        "prompts": float(len(transfer)),
        "kept": float(len(entries)),
        "teachers": float(len(teachers)),
    }
    return BundlePayload(CENTRAL_TEACHER, codec.identity, top_k, tuple(entries), stats)
