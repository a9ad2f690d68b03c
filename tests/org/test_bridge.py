"""The agent payload <-> exchange bundle bridge, and the category vocabulary both sides share."""

from __future__ import annotations

import numpy as np
import pytest

from agent.data.splits import TransferItem
from agent.data.templates import CATEGORIES
from agent.payload import BundleEntry, BundlePayload, PayloadError
from market.bundles import KnowledgeBundle
from market.categories import DEFAULT_CATEGORIES
from org.bridge import bundle_to_payload, payload_to_bundle

TEACHER = "0x" + "11" * 20
STUDENT = "0x" + "22" * 20


def _transfer() -> dict[str, TransferItem]:
    return {
        pid: TransferItem(pid, "lists", "f", f"def f(xs):\n    '''{pid}'''\n", ("assert f([]) == []",))
        for pid in ("t-1", "t-2", "t-3")
    }


def _payload(with_logits: bool) -> BundlePayload:
    rng = np.random.default_rng(0)
    entries = []
    for pid, length in (("t-1", 4), ("t-3", 2)):
        if with_logits:
            logits = np.sort(-rng.random((length, 3)).astype(np.float32), axis=1)[:, ::-1].copy()
            token_ids = rng.integers(0, 500, length).astype(np.int32)
            topk_ids = rng.integers(0, 500, (length, 3)).astype(np.int32)
        else:
            logits, token_ids, topk_ids = (
                np.zeros((0, 3), np.float32),
                np.zeros(0, np.int32),
                np.zeros((0, 3), np.int32),
            )
        entries.append(
            BundleEntry(pid, _transfer()[pid].prompt, "    return xs\n", token_ids, topk_ids, logits)
        )
    return BundlePayload("org0", "bpe-test", 3, tuple(entries))


@pytest.mark.parametrize("with_logits", [True, False])
def test_round_trip_through_the_wire_format(with_logits: bool) -> None:
    payload = _payload(with_logits)
    bundle = payload_to_bundle(payload, 4, TEACHER, STUDENT, vocab_size=512)
    wire = KnowledgeBundle.from_bytes(bundle.to_bytes())
    back = bundle_to_payload(wire, _transfer())
    assert back.tokenizer_id == "bpe-test"
    assert back.has_logits == with_logits
    for original, restored in zip(payload.entries, back.entries, strict=True):
        assert (restored.pid, restored.prompt, restored.completion) == (
            original.pid,
            original.prompt,
            original.completion,
        )
        np.testing.assert_array_equal(restored.token_ids, original.token_ids)
        if not with_logits:  # a text-only bundle carries no k: only emptiness matters
            assert restored.topk_ids.size == restored.topk_logprobs.size == 0
            continue
        np.testing.assert_array_equal(restored.topk_ids, original.topk_ids)
        np.testing.assert_allclose(restored.topk_logprobs, original.topk_logprobs, rtol=0, atol=1e-6)


def test_unknown_prompts_and_empty_payloads_are_refused() -> None:
    bundle = payload_to_bundle(_payload(True), 1, TEACHER, STUDENT, vocab_size=512)
    with pytest.raises(PayloadError, match="outside the transfer set"):
        bundle_to_payload(bundle, {"t-1": _transfer()["t-1"]})
    with pytest.raises(PayloadError, match="no completion"):
        payload_to_bundle(BundlePayload("org0", "bpe-test", 3, ()), 1, TEACHER, STUDENT, vocab_size=512)


def test_matchmaker_and_agents_share_the_categories() -> None:
    assert DEFAULT_CATEGORIES == CATEGORIES
