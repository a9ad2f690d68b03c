"""Knowledge and adapter bundles: safetensors round trips, and every rule a receiver relies on."""

from __future__ import annotations

import io
import pickle
import zipfile
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save as st_save

from exchange.canonical import Json, dumps_canonical
from exchange.errors import (
    FormatError,
    NonFiniteError,
    OversizedError,
    SchemaError,
    ShapeError,
    UnknownFormatError,
    UnsafePayloadError,
)
from exchange.sealing import looks_like_pickle
from market.bundles import (
    DEFAULT_LIMITS,
    AdapterBundle,
    KnowledgeBundle,
    Limits,
    TokenizerId,
    TopK,
    decode_container,
    encode_container,
)
from tests.exchange.samples import (
    PEFT,
    TEACHER,
    TOKENIZER,
    adapter,
    knowledge,
    knowledge_payload,
    lora_weights,
)

# --- round trips --------------------------------------------------------------------------------


def test_knowledge_bundle_round_trip() -> None:
    bundle = knowledge()
    again = KnowledgeBundle.from_bytes(bundle.to_bytes())
    assert again.completions == bundle.completions
    assert again.prompt_ids == bundle.prompt_ids
    assert again.tokenizer == TOKENIZER
    assert again.topk is not None
    assert bundle.topk is not None
    assert again.topk.k == 8
    assert again.topk.token_ids.dtype == np.uint16
    for name in ("input_ids", "token_ids", "logprobs", "offsets"):
        assert np.array_equal(getattr(again.topk, name), getattr(bundle.topk, name))
    ids, top, logprobs = again.topk.prompt(1)
    assert ids.shape == (20,)
    assert top.shape == (20, 8)
    assert logprobs.shape == (20, 8)


def test_text_only_and_topk_only_bundles() -> None:
    text = knowledge(topk=None)
    assert KnowledgeBundle.from_bytes(text.to_bytes()).completions == text.completions
    logits = knowledge(completions=None)
    assert KnowledgeBundle.from_bytes(logits.to_bytes()).completions is None
    with pytest.raises(SchemaError, match="needs"):
        knowledge(topk=None, completions=None)


def test_float16_logprobs_and_a_large_vocabulary() -> None:
    big = TokenizerId("wide", 100_000, "00" * 32)
    rng = np.random.default_rng(5)
    table = TopK.from_prompts(
        [(rng.integers(0, 100_000, 4), rng.integers(0, 100_000, (4, 16)), -rng.random((4, 16)))],
        big.vocab_size,
        logprob_dtype=np.float16,
    )
    assert table.token_ids.dtype == np.int32
    assert table.logprobs.dtype == np.float16
    bundle = knowledge(tokenizer=big, prompt_ids=("p",), topk=table, completions=None)
    again = KnowledgeBundle.from_bytes(bundle.to_bytes())
    assert again.topk is not None
    assert again.topk.logprobs.dtype == np.float16


def test_adapter_bundle_round_trip() -> None:
    bundle = adapter()
    again = AdapterBundle.from_bytes(bundle.to_bytes())
    assert again.base_model == bundle.base_model
    assert again.peft_config == PEFT
    assert sorted(again.weights) == sorted(bundle.weights)
    for name, array in bundle.weights.items():
        assert again.weights[name].dtype == array.dtype
        assert np.array_equal(again.weights[name], array)


# --- what a receiver refuses --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "error"),
    [
        ({"version": 2}, UnknownFormatError),
        ({"format": "knexa.other"}, UnknownFormatError),
        ({"k": 16}, ShapeError),
        ({"prompt_ids": ["a", "b"]}, ShapeError),  # offsets describe three prompts
        ({"teacher": TEACHER.lower()}, SchemaError),
        ({"extra": 1}, SchemaError),
        ({"tokenizer": {"name": "x", "vocab_size": 1000, "digest": "y"}}, SchemaError),  # ids beyond vocab
    ],
)
def test_knowledge_header_rules(meta: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        KnowledgeBundle.from_bytes(knowledge_payload(meta))


def _tensors(**changes: Any) -> dict[str, Any]:
    bundle = knowledge()
    assert bundle.topk is not None
    tensors = {
        "input_ids": bundle.topk.input_ids,
        "topk_ids": bundle.topk.token_ids,
        "topk_logprobs": bundle.topk.logprobs.copy(),
        "offsets": bundle.topk.offsets.copy(),
    }
    tensors.update(changes)
    return tensors


def test_nan_and_infinite_logprobs_are_refused() -> None:
    for bad in (np.nan, np.inf, -np.inf):
        logprobs = _tensors()["topk_logprobs"]
        logprobs[5, 3] = bad
        with pytest.raises(NonFiniteError):
            KnowledgeBundle.from_bytes(knowledge_payload({}, _tensors(topk_logprobs=logprobs)))


@pytest.mark.parametrize(
    ("tensors", "error"),
    [
        (lambda t: {**t, "topk_logprobs": -np.abs(t["topk_logprobs"][:, :4])}, ShapeError),
        (lambda t: {**t, "topk_logprobs": np.abs(t["topk_logprobs"]) + 1.0}, SchemaError),  # log p > 0
        (lambda t: {**t, "offsets": np.array([0, 30, 20, 60], np.int64)}, ShapeError),  # decreasing
        (lambda t: {**t, "offsets": t["offsets"].astype(np.int32)}, ShapeError),
        (lambda t: {**t, "topk_logprobs": t["topk_logprobs"].astype(np.float64)}, ShapeError),
        (lambda t: {k: v for k, v in t.items() if k != "input_ids"}, ShapeError),
        (lambda t: {**t, "extra": np.zeros(3, np.float32)}, ShapeError),
    ],
)
def test_tensor_rules(tensors: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        KnowledgeBundle.from_bytes(knowledge_payload({}, tensors(_tensors())))


def test_pickles_and_torch_archives_are_never_loaded() -> None:
    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (print, ("this must never run",))

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("archive/data.pkl", pickle.dumps({"w": [1.0]}))
    for payload in (pickle.dumps(Exploit()), pickle.dumps({"logits": [0.5]}, protocol=2), archive.getvalue()):
        with pytest.raises(UnsafePayloadError):
            KnowledgeBundle.from_bytes(payload)
        with pytest.raises(UnsafePayloadError):
            AdapterBundle.from_bytes(payload)


def test_a_safetensors_header_length_that_looks_like_a_pickle_opcode_still_decodes() -> None:
    """Found by a real run: a 896-byte header starts the payload with b"\\x80\\x03", a pickle's
    PROTO 3 opcode. The payload is safetensors all the same and must open."""
    for padding in range(0, 1200, 7):
        data = encode_container({"pad": "x" * padding}, {"w": np.zeros(2, np.float32)})
        if looks_like_pickle(data):
            meta, tensors = decode_container(data, DEFAULT_LIMITS)
            assert meta == {"pad": "x" * padding}
            assert tensors["w"].tolist() == [0.0, 0.0]
            return
    pytest.fail("no padding gave a header length that looks like a pickle opcode")


def test_garbage_and_truncation_are_format_errors() -> None:
    data = knowledge().to_bytes()
    for bad in (b"", b"\x00" * 7, data[:-1], data[:100], b"\xff" * 64):
        with pytest.raises(FormatError):
            KnowledgeBundle.from_bytes(bad)
    plain = st_save({"x": np.zeros(2, np.float32)})
    with pytest.raises(UnknownFormatError, match="knexa header"):
        KnowledgeBundle.from_bytes(plain)


def test_limits_are_checked() -> None:
    data = knowledge().to_bytes()
    with pytest.raises(OversizedError):
        KnowledgeBundle.from_bytes(data, Limits(max_bytes=len(data) - 1))
    with pytest.raises(OversizedError):
        KnowledgeBundle.from_bytes(data, Limits(max_positions=59))
    with pytest.raises(OversizedError):
        KnowledgeBundle.from_bytes(data, Limits(max_prompts=2))
    with pytest.raises(SchemaError):
        KnowledgeBundle.from_bytes(data, Limits(max_completion_chars=5))
    with pytest.raises(ShapeError):
        KnowledgeBundle.from_bytes(data, Limits(max_k=4))


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"peft_config": {**PEFT, "peft_type": "IA3"}}, SchemaError),
        ({"peft_config": {**PEFT, "r": 8}}, ShapeError),
        ({"peft_config": {**PEFT, "target_modules": ["q_proj"]}}, SchemaError),
        ({"peft_config": {**PEFT, "lora_dropout": float("nan")}}, NonFiniteError),
        ({"weights": {k: v for k, v in lora_weights().items() if "v_proj.lora_B" not in k}}, ShapeError),
        ({"weights": {**lora_weights(), "x.q_proj.lora_A.weight": np.zeros((4, 8), np.float32)}}, ShapeError),
        ({"weights": {}}, SchemaError),
    ],
)
def test_adapter_rules(changes: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        adapter(**changes)


def test_adapter_with_infinite_weights_is_refused_on_read() -> None:
    weights = lora_weights()
    name = next(iter(weights))
    weights[name][0, 0] = np.inf
    meta: dict[str, Json] = {
        "format": "knexa.adapter",
        "version": 1,
        "base_model": {"name": "m", "revision": "r"},
        "peft_config": PEFT,
    }
    payload = st_save(weights, metadata={"knexa": dumps_canonical(meta).decode()})
    with pytest.raises(NonFiniteError):
        AdapterBundle.from_bytes(payload)
    meta["version"] = 3
    with pytest.raises(UnknownFormatError):
        AdapterBundle.from_bytes(st_save(lora_weights(), metadata={"knexa": dumps_canonical(meta).decode()}))
