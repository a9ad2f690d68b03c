"""The knowledge-bundle payload as the learning core sees it, and its tensor form.

This is deliberately a small in-memory dataclass owned by the agent. The exchange layer
(``exchange.KnowledgeBundle``: safetensors tensors + metadata, CIDs, encryption) wraps it;
**the single place where that conversion happens is** :func:`to_tensors` /
:func:`from_tensors` below: they flatten the payload into named numpy arrays (what
safetensors stores) plus a JSON-able metadata dict, and back, validating shapes and
ranges on the way in. Nothing else in ``agent/`` knows about wire formats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from agent.errors import AgentError


@dataclass(frozen=True)
class BundleEntry:
    """The teacher's answer to one transfer prompt.

    ``token_ids[i]`` is completion token ``i`` (teacher tokenizer, closing EOS included);
    ``topk_ids[i]`` / ``topk_logprobs[i]`` are the teacher's top-k next-token ids and
    log-probabilities at that position. Logit arrays are empty in text-only bundles.
    """

    pid: str
    prompt: str
    completion: str
    token_ids: np.ndarray  # int32 [L]
    topk_ids: np.ndarray  # int32 or uint16 [L, k]
    topk_logprobs: np.ndarray  # float32 [L, k]

    @property
    def has_logits(self) -> bool:
        return self.topk_ids.size > 0


@dataclass(frozen=True)
class BundlePayload:
    teacher: str
    tokenizer_id: str
    top_k: int
    entries: tuple[BundleEntry, ...]
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def has_logits(self) -> bool:
        return any(e.has_logits for e in self.entries)

    def nbytes(self) -> int:
        return sum(
            e.token_ids.nbytes + e.topk_ids.nbytes + e.topk_logprobs.nbytes + len(e.completion.encode())
            for e in self.entries
        )


class PayloadError(AgentError, ValueError):
    """A payload (usually from another organisation) is malformed."""


def _id_dtype(vocab_size: int) -> type[np.unsignedinteger] | type[np.signedinteger]:
    return np.uint16 if vocab_size <= 65536 else np.int32


def to_tensors(payload: BundlePayload, vocab_size: int) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Flatten into arrays (ids as uint16 when the vocabulary allows) + metadata.

    Arrays: ``token_ids [N]``, ``topk_ids [N, k]``, ``topk_logprobs [N, k]`` concatenated
    over entries, and ``offsets [E + 1]``; metadata carries prompts, completions, pids.
    """
    k = payload.top_k
    dt = _id_dtype(vocab_size)
    offsets = np.zeros(len(payload.entries) + 1, dtype=np.int64)
    for i, e in enumerate(payload.entries):
        offsets[i + 1] = offsets[i] + (len(e.token_ids) if e.has_logits else 0)
    with_logits = [e for e in payload.entries if e.has_logits]

    def cat(arrays: Sequence[np.ndarray], shape: tuple[int, ...], dtype: type[np.generic]) -> np.ndarray:
        return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(shape, dtype=dtype)

    tensors = {
        "token_ids": cat([e.token_ids for e in with_logits], (0,), dt),
        "topk_ids": cat([e.topk_ids for e in with_logits], (0, k), dt),
        "topk_logprobs": cat([e.topk_logprobs for e in with_logits], (0, k), np.float32),
        "offsets": offsets,
    }
    meta: dict[str, object] = {
        "teacher": payload.teacher,
        "tokenizer_id": payload.tokenizer_id,
        "top_k": k,
        "vocab_size": vocab_size,
        "pids": [e.pid for e in payload.entries],
        "prompts": [e.prompt for e in payload.entries],
        "completions": [e.completion for e in payload.entries],
        "stats": dict(payload.stats),
    }
    return tensors, meta


def from_tensors(tensors: dict[str, np.ndarray], meta: dict[str, object]) -> BundlePayload:
    """Inverse of :func:`to_tensors`, validating everything that came from outside."""
    try:
        k = int(meta["top_k"])  # type: ignore[call-overload]
        vocab = int(meta["vocab_size"])  # type: ignore[call-overload]
        pids = [str(x) for x in meta["pids"]]  # type: ignore[attr-defined]
        prompts = [str(x) for x in meta["prompts"]]  # type: ignore[attr-defined]
        comps = [str(x) for x in meta["completions"]]  # type: ignore[attr-defined]
        ids, tk, lp, off = (tensors[n] for n in ("token_ids", "topk_ids", "topk_logprobs", "offsets"))
    except (KeyError, TypeError, ValueError) as exc:
        raise PayloadError(f"malformed bundle: {exc}") from exc
    if not (len(pids) == len(prompts) == len(comps) == len(off) - 1):
        raise PayloadError("entry lists and offsets disagree in length")
    if k < 1 or tk.ndim != 2 or lp.shape != tk.shape or tk.shape[1] != k or len(ids) != len(tk):
        raise PayloadError("top-k arrays have inconsistent shapes")
    if off[0] != 0 or np.any(np.diff(off) < 0) or off[-1] != len(ids):
        raise PayloadError("offsets are not a valid partition")
    if ids.size and (int(ids.max()) >= vocab or int(tk.max()) >= vocab or int(min(ids.min(), tk.min())) < 0):
        raise PayloadError("token id out of the vocabulary")
    if lp.size and (not np.all(np.isfinite(lp)) or float(lp.max()) > 1e-4):
        raise PayloadError("log-probabilities must be finite and <= 0")
    entries = []
    for i in range(len(pids)):
        a, b = int(off[i]), int(off[i + 1])
        entries.append(
            BundleEntry(
                pids[i],
                prompts[i],
                comps[i],
                ids[a:b].astype(np.int32),
                tk[a:b].astype(np.int32) if b > a else np.zeros((0, k), np.int32),
                lp[a:b].astype(np.float32) if b > a else np.zeros((0, k), np.float32),
            )
        )
    stats_raw = meta.get("stats", {})
    stats = {str(key): float(v) for key, v in stats_raw.items()} if isinstance(stats_raw, dict) else {}
    return BundlePayload(str(meta["teacher"]), str(meta["tokenizer_id"]), k, tuple(entries), stats)
