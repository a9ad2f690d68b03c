"""Tokenizer, model zoo, LoRA training, teacher bundles and student distillation on tiny real models."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import PreTrainedModel

from agent import teacher as teacher_mod
from agent.agent import Agent
from agent.data import build_suite, pretraining_corpus
from agent.data.splits import OrgData, Suite
from agent.generation import greedy_complete
from agent.models.tokenizer import Codec, shared_tokenizer, train_tokenizer
from agent.models.zoo import (
    TINY_ZOO,
    ZOO,
    PretrainConfig,
    attach_lora,
    build_model,
    load_or_pretrain,
    n_params,
)
from agent.payload import BundleEntry, BundlePayload, PayloadError, from_tensors, to_tensors
from agent.sandbox import Evaluator
from agent.student import DistillConfig, Schedule, distil, resolve_mode, topk_kl
from agent.teacher import TeacherConfig, make_bundle
from agent.training import (
    IGNORE,
    Budget,
    Example,
    collate,
    encode_example,
    make_optimizer,
    shifted_ce,
    train_steps,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("knexa-cache")
    old = os.environ.get("KNEXA_CACHE")
    os.environ["KNEXA_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("KNEXA_CACHE", None)
    else:
        os.environ["KNEXA_CACHE"] = old


@pytest.fixture(scope="module")
def codec(cache: Path) -> Codec:
    corpus = pretraining_corpus(400)
    return shared_tokenizer([p.prompt + p.solution for p in corpus], 512, cache=cache)


@pytest.fixture(scope="module")
def suite() -> Suite:
    return build_suite(
        n_orgs=2, train_per_org=24, val_per_org=6, transfer_per_category=1, test_per_category=1, seed=3
    )


@pytest.fixture(scope="module")
def bases(codec: Codec, cache: Path) -> dict[str, PreTrainedModel]:
    """Briefly pretrained tiny bases (LoRA cannot move a random-init model far: frozen embeddings)."""
    corpus = pretraining_corpus(400)
    cfg = PretrainConfig(steps=40, batch_size=16, lr=3e-3)
    return {n: load_or_pretrain(spec, codec, corpus, cfg, cache=cache)[0] for n, spec in TINY_ZOO.items()}


@pytest.fixture(scope="module")
def evaluator() -> Evaluator:
    return Evaluator(workers=2)


def test_tokenizer_roundtrip_cache_and_identity(codec: Codec, cache: Path) -> None:
    text = 'def f(xs):\n    """Return xs reversed."""\n    return xs[::-1]\n'
    assert codec.decode(codec.encode(text)) == text
    assert 256 < codec.vocab_size <= 512
    files = list((cache / "tokenizers").glob("*.json"))
    assert len(files) == 1
    again = shared_tokenizer([p.prompt + p.solution for p in pretraining_corpus(400)], 512, cache=cache)
    assert again.identity == codec.identity
    other = train_tokenizer(["completely different text " * 50], 300)
    assert other.identity != codec.identity


def test_encode_example_trains_only_on_completion(codec: Codec) -> None:
    ex = encode_example(codec, "def f(x):\n", "    return x\n", 64)
    n_prompt = len(codec.encode("def f(x):\n"))
    assert all(lab == IGNORE for lab in ex.labels[:n_prompt])
    assert list(ex.labels[n_prompt:]) == [*codec.encode("    return x\n"), codec.eos_id]
    batch = collate([ex, encode_example(codec, "def g(y):\n", "    return y + 1\n", 64)], codec.pad_id)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape


def test_zoo_has_three_families_within_the_size_range(codec: Codec) -> None:
    assert {s.family for s in ZOO.values()} == {"llama", "gpt2", "neox"}
    assert len({(s.hidden, s.layers) for s in ZOO.values()}) == 3
    for spec in ZOO.values():
        model = build_model(spec, codec, seed=0)
        assert 0.2e6 < n_params(model) < 3e6, spec.name
    a = build_model(TINY_ZOO["llama-t"], codec, seed=1)
    b = build_model(TINY_ZOO["llama-t"], codec, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


def _data_loss(model: torch.nn.Module, examples: list[Example], pad_id: int) -> float:
    batch = collate(examples, pad_id)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return float(shifted_ce(logits, batch["labels"]))


@pytest.mark.parametrize("name", sorted(TINY_ZOO))
def test_lora_training_moves_only_the_adapter_and_lowers_loss(
    codec: Codec, suite: Suite, bases: dict[str, PreTrainedModel], name: str
) -> None:
    spec = TINY_ZOO[name]
    model = attach_lora(copy.deepcopy(bases[name]), spec, seed=0)
    trainable = n_params(model, trainable_only=True)
    assert 0 < trainable < n_params(model) / 2
    frozen_before = {k: v.clone() for k, v in model.state_dict().items() if "lora_" not in k}
    examples = [encode_example(codec, p.prompt, p.solution, spec.max_len) for p in suite.orgs[0].train]
    before = _data_loss(model, examples, codec.pad_id)
    opt = make_optimizer(model, 2e-2)
    losses = train_steps(model, examples, steps=60, batch_size=8, optimizer=opt, pad_id=codec.pad_id, seed=0)
    assert len(losses) == 60
    assert _data_loss(model, examples, codec.pad_id) < 0.9 * before
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in frozen_before.items())


def test_pretraining_is_cached_by_content(codec: Codec, cache: Path) -> None:
    spec = TINY_ZOO["neox-t"]
    corpus = pretraining_corpus(64)
    cfg = PretrainConfig(steps=3, batch_size=4, seed=0)
    first, hit1 = load_or_pretrain(spec, codec, corpus, cfg, cache=cache)
    second, hit2 = load_or_pretrain(spec, codec, corpus, cfg, cache=cache)
    assert (hit1, hit2) == (False, True)
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters(), strict=True))
    _, hit3 = load_or_pretrain(spec, codec, corpus, replace(cfg, seed=1), cache=cache)
    assert hit3 is False  # another seed is another key


def _fake_payload(codec: Codec, k: int = 4) -> BundlePayload:
    rng = np.random.default_rng(0)
    entries = []
    for i in range(3):
        comp = f"    return x + {i}\n"
        tok = np.array([*codec.encode(comp), codec.eos_id], np.int32)
        ids = rng.integers(0, codec.vocab_size, size=(len(tok), k)).astype(np.int32)
        ids[:, 0] = tok
        lp = np.sort(np.log(rng.dirichlet(np.ones(k), size=len(tok))).astype(np.float32), axis=1)[:, ::-1]
        entries.append(BundleEntry(f"p{i}", f"def f{i}(x):\n", comp, tok, ids, np.ascontiguousarray(lp)))
    return BundlePayload("org9", codec.identity, k, tuple(entries), {"kept": 3.0})


def test_payload_tensor_roundtrip_and_validation(codec: Codec) -> None:
    payload = _fake_payload(codec)
    tensors, meta = to_tensors(payload, codec.vocab_size)
    assert tensors["topk_ids"].dtype == np.uint16
    assert tensors["topk_logprobs"].dtype == np.float32
    back = from_tensors(tensors, meta)
    assert back.teacher == "org9"
    assert back.tokenizer_id == codec.identity
    assert back.top_k == 4
    for a, b in zip(payload.entries, back.entries, strict=True):
        assert a.completion == b.completion
        assert np.array_equal(a.topk_ids, b.topk_ids)
        assert np.array_equal(a.topk_logprobs, b.topk_logprobs)
        assert np.array_equal(a.token_ids, b.token_ids)
    bad_ids = dict(tensors, topk_ids=tensors["topk_ids"].astype(np.int64) + codec.vocab_size)
    with pytest.raises(PayloadError, match="vocabulary"):
        from_tensors(bad_ids, meta)
    with pytest.raises(PayloadError, match="log-prob"):
        from_tensors(dict(tensors, topk_logprobs=-tensors["topk_logprobs"] + 1.0), meta)
    with pytest.raises(PayloadError):
        from_tensors(tensors, {**meta, "pids": ["only-one"]})
    with pytest.raises(PayloadError):
        from_tensors({k: v for k, v in tensors.items() if k != "offsets"}, meta)


def test_schedules() -> None:
    assert Schedule(0.5).at(3, 10) == 0.5
    lin = Schedule(1.0, 0.0, "linear")
    assert lin.at(0, 11) == 1.0
    assert lin.at(10, 11) == 0.0
    assert lin.at(5, 11) == pytest.approx(0.5)
    cos = Schedule(4.0, 1.0, "cosine")
    assert cos.at(0, 5) == pytest.approx(4.0)
    assert cos.at(4, 5) == pytest.approx(1.0)


def test_topk_kl_is_zero_iff_student_matches_teacher(codec: Codec) -> None:
    payload = _fake_payload(codec)
    from agent.student import bundle_examples

    kd = bundle_examples(payload, codec, "logits", 160)
    width = max(len(k.example.ids) for k in kd)
    logits = torch.full((len(kd), width, codec.vocab_size), -30.0)
    for row, k in enumerate(kd):
        for j, pos in enumerate(k.example.completion_positions):
            logits[row, pos - 1, k.topk_ids[j]] = k.topk_logprobs[j]
    assert float(topk_kl(logits, kd, 1.0)) == pytest.approx(0.0, abs=1e-4)
    assert float(topk_kl(torch.zeros_like(logits), kd, 1.0)) > 1.0


def test_teacher_keeps_only_completions_passing_public_tests(
    codec: Codec, suite: Suite, evaluator: Evaluator, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = TINY_ZOO["gpt2-t"]
    model = attach_lora(build_model(spec, codec, seed=0), spec, seed=0)
    transfer = suite.transfer[:4]
    problems = {p.pid: p for o in suite.orgs for p in o.train}
    # Completions: the right body for items 0 and 2 (taken from a fresh instance is not possible,
    # so write them from the public tests' expectation via a lookup-free trick: echo the tests).
    right = [_solve_from_public_tests(t.prompt, t.public_tests) for t in transfer]
    wrong = "    return None\n"
    canned = [right[0], wrong, right[2], ""]
    monkeypatch.setattr(teacher_mod, "greedy_complete", lambda *a, **k: list(canned))
    payload = make_bundle(model, codec, "org0", transfer, evaluator, TeacherConfig(top_k=5))
    assert [e.pid for e in payload.entries] == [transfer[0].pid, transfer[2].pid]
    assert payload.stats["kept"] == 2
    assert payload.tokenizer_id == codec.identity
    for e in payload.entries:
        assert e.topk_ids.shape == e.topk_logprobs.shape == (len(e.token_ids), 5)
        assert e.token_ids[-1] == codec.eos_id
        assert np.all(e.topk_logprobs <= 0)
        assert np.all(np.diff(e.topk_logprobs, axis=1) <= 1e-6)
    text = make_bundle(model, codec, "org0", transfer, evaluator, TeacherConfig(mode="text"))
    assert not text.has_logits
    assert [e.completion for e in text.entries] == [right[0], right[2]]
    assert problems is not None


def _solve_from_public_tests(prompt: str, tests: tuple[str, ...]) -> str:
    """A body that returns the expected value for each public example (a 'correct' answer for them)."""
    lines = []
    params = prompt.split("(", 1)[1].split(")", 1)[0]
    for t in tests:
        call, expected = t[len("assert ") :].split(" == ", 1)
        args = call.split("(", 1)[1].rsplit(")", 1)[0]
        lines.append(f"    if ({params},) == ({args},):\n        return {expected}")
    return "\n".join(lines) + "\n"


def test_student_logit_distillation_pulls_towards_teacher_and_text_mode_works_across_tokenizers(
    codec: Codec, suite: Suite, bases: dict[str, PreTrainedModel]
) -> None:
    spec = TINY_ZOO["llama-t"]
    model = attach_lora(copy.deepcopy(bases["llama-t"]), spec, seed=0)
    payload = _fake_payload(codec)
    private = [encode_example(codec, p.prompt, p.solution, spec.max_len) for p in suite.orgs[0].train]
    from agent.student import bundle_examples

    kd = bundle_examples(payload, codec, "logits", spec.max_len)
    batch = collate([k.example for k in kd], codec.pad_id)

    def kl() -> float:
        with torch.no_grad():
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return float(topk_kl(out, kd, 1.0))

    before = kl()
    opt = make_optimizer(model, 1e-2)
    stats = distil(
        model,
        codec,
        payload,
        private,
        steps=25,
        batch_size=8,
        optimizer=opt,
        cfg=DistillConfig(alpha=Schedule(1.0)),
        seed=0,
    )
    assert stats.mode == "logits"
    assert stats.bundle_examples == 3
    assert len(stats.losses) == 25
    assert kl() < before * 0.85

    foreign = replace(payload, tokenizer_id="bpe-other")
    assert resolve_mode(foreign, codec, "auto") == "text"
    with pytest.raises(ValueError, match="same tokenizer"):
        resolve_mode(foreign, codec, "logits")
    text_stats = distil(
        model, codec, foreign, private, steps=2, batch_size=4, optimizer=opt, cfg=DistillConfig(), seed=1
    )
    assert text_stats.mode == "text"
    empty = replace(payload, entries=())
    assert (
        distil(
            model, codec, empty, private, steps=2, batch_size=4, optimizer=opt, cfg=DistillConfig(), seed=2
        ).mode
        == "local"
    )


@pytest.mark.slow
def test_distillation_transfers_a_skill_between_model_families(codec: Codec, evaluator: Evaluator) -> None:
    """A teacher's knowledge reaches a student of another family through a text bundle.

    The teacher (Llama-style) was trained on 'arithmetic'; the student (GPT-2-style) only
    has 'strings' data. After one round of distilling the teacher's filtered completions,
    the student solves the taught transfer prompts it could not solve before, unlike a
    compute-matched local-only control. (At this toy scale the student does not yet
    generalise to new arithmetic problems within one round; the federation bench measures
    that on held-out test data.)
    """
    import random

    from agent.data.splits import _Pool
    from agent.data.templates import Role
    from agent.models.zoo import pretrain

    full = build_suite(
        n_orgs=1, train_per_org=4, val_per_org=2, transfer_per_category=24, test_per_category=12, seed=11
    )
    pool = _Pool({p.key for p in full.test} | {p.key for o in full.orgs for p in o.train + o.val})
    rng = random.Random(5)
    a_train = tuple(pool.draw("arithmetic", Role.PRIVATE, rng) for _ in range(64))
    s_train = tuple(pool.draw("strings", Role.PRIVATE, rng) for _ in range(48))
    assert not {p.key for p in a_train} & {p.key for p in full.test}
    teacher_base = pretrain(
        TINY_ZOO["llama-t"],
        codec,
        list(pretraining_corpus(400)) + list(a_train) * 3,
        PretrainConfig(steps=300, batch_size=16, lr=5e-3),
    )
    student_base = pretrain(
        TINY_ZOO["gpt2-t"], codec, pretraining_corpus(400), PretrainConfig(steps=300, lr=5e-3)
    )
    budget = Budget(steps=100, batch_size=16, lr=1e-2)
    teacher = Agent(
        OrgData("t", {}, a_train, a_train[:4]),
        TINY_ZOO["llama-t"],
        codec,
        teacher_base,
        budget=budget,
        seed=0,
    )
    student = Agent(
        OrgData("s", {}, s_train, s_train[:4]),
        TINY_ZOO["gpt2-t"],
        codec,
        student_base,
        budget=budget,
        seed=1,
    )
    student.train_local(40)
    arith_test = [p for p in full.test if p.category == "arithmetic"]
    arith_transfer = [t for t in full.transfer if t.category == "arithmetic"]
    assert teacher.evaluate(arith_test, evaluator).rate >= 0.25
    payload = teacher.teach(arith_transfer, evaluator, TeacherConfig(mode="text"))
    assert len(payload.entries) >= 4
    taught = [t for t in arith_transfer if t.pid in {e.pid for e in payload.entries}]

    def solves_taught(agent: Agent) -> float:
        comps = greedy_complete(agent.model, codec, [t.prompt for t in taught], max_new_tokens=48)
        return evaluator.pass_rate(
            [teacher_mod.public_program(t, c) for t, c in zip(taught, comps, strict=True)]
        )

    before = solves_taught(student)
    control = copy.deepcopy(student)
    report = student.learn(payload, evaluator, DistillConfig(alpha=Schedule(0.8)))
    assert report.mode == "text"
    assert report.bundle_examples == len(payload.entries)
    control.train_local()
    after = solves_taught(student)
    assert after >= before + 0.3
    assert after > solves_taught(control)
