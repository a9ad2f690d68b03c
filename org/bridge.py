"""The one place where the learning core's bundle payload meets the exchange's wire format.

`BundlePayload` (agent.payload) is what the teacher produces and the student distils;
`KnowledgeBundle` (market.bundles) is what is sealed, stored and verified. Prompts do not travel:
the transfer set is public, so a bundle names prompts by id and the student looks them up, refusing
ids it does not know.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np

from agent.data.splits import TransferItem
from agent.payload import BundleEntry, BundlePayload, PayloadError
from market.bundles import KnowledgeBundle, TokenizerId, TopK


def tokenizer_id(identity: str, vocab_size: int) -> TokenizerId:
    return TokenizerId(
        name=identity, vocab_size=vocab_size, digest=hashlib.sha256(identity.encode()).hexdigest()
    )


def payload_to_bundle(
    payload: BundlePayload, round_id: int, teacher: str, student: str, vocab_size: int
) -> KnowledgeBundle:
    """Wrap a teacher's payload for one student of one round."""
    if not payload.entries:
        raise PayloadError("the teacher has no completion that passes the public tests to share")
    topk = None
    if payload.has_logits:
        k = payload.top_k
        topk = TopK.from_prompts(
            [
                (entry.token_ids, entry.topk_ids, entry.topk_logprobs)
                if entry.has_logits
                else (np.zeros(0, np.int32), np.zeros((0, k), np.int32), np.zeros((0, k), np.float32))
                for entry in payload.entries
            ],
            vocab_size,
        )
    return KnowledgeBundle(
        round=round_id,
        teacher=teacher,
        student=student,
        tokenizer=tokenizer_id(payload.tokenizer_id, vocab_size),
        prompt_ids=tuple(entry.pid for entry in payload.entries),
        topk=topk,
        completions=tuple(entry.completion for entry in payload.entries),
    )


def bundle_to_payload(bundle: KnowledgeBundle, transfer: Mapping[str, TransferItem]) -> BundlePayload:
    """Unwrap a verified bundle for distillation; prompts come from the public transfer set."""
    unknown = [pid for pid in bundle.prompt_ids if pid not in transfer]
    if unknown:
        raise PayloadError(f"the bundle names prompts outside the transfer set: {unknown[:3]}")
    completions = bundle.completions or tuple("" for _ in bundle.prompt_ids)
    k = bundle.topk.k if bundle.topk is not None else 1
    entries = []
    for index, pid in enumerate(bundle.prompt_ids):
        if bundle.topk is not None:
            inputs, ids, logprobs = bundle.topk.prompt(index)
            token_ids = inputs.astype(np.int32)
            topk_ids = ids.astype(np.int32)
            topk_logprobs = logprobs.astype(np.float32)
        else:
            token_ids = np.zeros(0, np.int32)
            topk_ids = np.zeros((0, k), np.int32)
            topk_logprobs = np.zeros((0, k), np.float32)
        entries.append(
            BundleEntry(pid, transfer[pid].prompt, completions[index], token_ids, topk_ids, topk_logprobs)
        )
    return BundlePayload(bundle.teacher, bundle.tokenizer.name, k, tuple(entries))
