"""The heterogeneous world: its generator, its data, targeted bundles, the bundle's batch share, the NLL."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import pytest
import torch
from transformers import PreTrainedModel

from agent.data.problems import instantiate
from agent.data.splits import TransferItem, check_disjoint
from agent.data.templates import CATEGORIES, Role, templates
from agent.data.world import WorldConfig, build_world_suite, corrupt_labels, plan_world, world_rows
from agent.generation import completion_nll
from agent.models.tokenizer import Codec, shared_tokenizer
from agent.models.zoo import TINY_ZOO, build_model
from agent.payload import BundleEntry, BundlePayload
from agent.student import DistillConfig, distil
from agent.teacher import targeted_prompts
from agent.training import Example, collate, encode_example, make_optimizer


def test_every_category_has_well_over_a_thousand_distinct_private_prompts() -> None:
    for category in CATEGORIES:
        pool = templates(role=Role.PRIVATE, category=category)
        rng = random.Random(f"capacity/{category}")
        keys = {instantiate(rng.choice(pool), rng).key for _ in range(6000)}
        assert len(keys) > 1500, category


def test_widened_names_leave_the_pretraining_corpus_alone() -> None:
    """PUBLIC templates and anonymous code draw exactly as before: no wider names appear there."""
    from agent.data.splits import pretraining_corpus
    from agent.data.templates import ARG_NAMES, EXTRA_ARG_NAMES, NAME_PREFIXES

    original = {n for names in ARG_NAMES.values() for n in names}
    extra = {n for names in EXTRA_ARG_NAMES.values() for n in names} - original
    for p in pretraining_corpus(300):
        header = p.prompt.split("\n")[0]
        name, params = header[4:].split("(", 1)
        assert not any(name.startswith(prefix) for prefix in NAME_PREFIXES if prefix), header
        assert not extra & {a.strip() for a in params.rstrip("):").split(",")}, header


def test_hetero_world_spans_sizes_strengths_and_has_a_low_quality_participant() -> None:
    cfg = WorldConfig()
    for seed in range(5):
        plans = plan_world(cfg, seed)
        sizes = sorted(p.train_size for p in plans)
        assert cfg.min_train <= sizes[0]
        assert sizes[-1] <= cfg.max_train
        assert sizes[-1] / sizes[0] > 5  # stratified: every seed spans small and large
        assert sum(p.strong for p in plans) == 3
        assert {p.base for p in plans if p.strong} <= set(cfg.strong)
        assert {p.base for p in plans if not p.strong} <= set(cfg.weak)
        bad = [p for p in plans if p.low_quality]
        assert len(bad) == 1
        assert bad[0].label_noise > 0
        assert bad[0].logit_noise > 0
        assert all(p.label_noise == 0 and p.logit_noise == 0 for p in plans if not p.low_quality)
    assert plan_world(cfg, 3) == plan_world(cfg, 3)
    assert plan_world(cfg, 3) != plan_world(cfg, 4)


def test_control_world_is_homogeneous() -> None:
    plans = plan_world(WorldConfig(kind="control"), 0)
    assert {p.train_size for p in plans} == {160}
    assert not any(p.strong or p.low_quality for p in plans)


def test_world_suite_is_disjoint_sized_and_keeps_measurements_clean() -> None:
    cfg = WorldConfig()
    suite, plans = build_world_suite(cfg, 1)
    check_disjoint(suite)
    assert len(suite.test) == 16 * len(CATEGORIES)
    assert Counter(p.category for p in suite.test) == dict.fromkeys(CATEGORIES, 16)
    assert len(suite.transfer) == 16 * len(CATEGORIES)
    for org, plan in zip(suite.orgs, plans, strict=True):
        assert len(org.train) == plan.train_size
        assert len(org.val) == 64
        assert len(org.test) == 64
        # the test set follows the organisation's own mix: its top category dominates
        top = max(org.mix, key=lambda c: org.mix[c])
        if org.mix[top] > 0.6:
            assert Counter(p.category for p in org.test).most_common(1)[0][0] == top
    bad = next(o for o, p in zip(suite.orgs, plans, strict=True) if p.low_quality)
    clean_suite, _ = build_world_suite(replace(cfg, label_noise=0.0), 1)
    clean = next(o for o in clean_suite.orgs if o.org == bad.org)
    wrong = sum(a.solution != b.solution for a, b in zip(bad.train, clean.train, strict=True))
    assert wrong == pytest.approx(0.5 * len(bad.train), abs=1)
    # a poor participant's validation and test references are not corrupted: its reward is honest
    assert bad.val == clean.val
    assert bad.test == clean.test
    rows = world_rows(suite, plans)
    assert [r["train"] for r in rows] == [p.train_size for p in plans]


def test_corrupted_labels_are_wrong_solutions_for_their_prompts() -> None:
    suite, _ = build_world_suite(WorldConfig(kind="control"), 0)
    train = suite.orgs[0].train[:40]
    noisy = corrupt_labels(train, 0.5, random.Random(0))
    changed = [(a, b) for a, b in zip(train, noisy, strict=True) if a.solution != b.solution]
    assert len(changed) == 20
    for _, bad in changed[:5]:
        namespace: dict[str, object] = {}
        try:
            exec(bad.reference_program.script, namespace)
            passed = True
        except Exception:
            passed = False
        assert not passed
    assert corrupt_labels(train, 0.0, random.Random(0)) == train


def _item(pid: str, category: str) -> TransferItem:
    return TransferItem(pid, category, "f", f"def f():  # {pid}\n", ())


def test_targeted_prompts_put_the_students_categories_first() -> None:
    transfer = [_item(f"{c}{i}", c) for c in CATEGORIES for i in range(3)]
    hist = dict.fromkeys(CATEGORIES, 0.0) | {"sorting": 0.7, "dicts": 0.3}
    chosen = targeted_prompts(transfer, hist, 5)
    assert [t.category for t in chosen] == ["sorting"] * 3 + ["dicts"] * 2
    assert len(targeted_prompts(transfer, hist, None)) == len(transfer)
    assert targeted_prompts(transfer, hist, -3) == []
    # an unknown or empty histogram falls back to transfer order, never to an error
    assert [t.pid for t in targeted_prompts(transfer, {}, 4)] == [t.pid for t in transfer[:4]]


@pytest.fixture(scope="module")
def tiny() -> tuple[Codec, PreTrainedModel]:
    from agent.data.splits import pretraining_corpus

    corpus = pretraining_corpus(200)
    codec = shared_tokenizer([p.prompt + p.solution for p in corpus], 512)
    return codec, build_model(TINY_ZOO["llama-t"], codec, seed=0)


def test_completion_nll_is_the_token_weighted_mean(tiny: tuple[Codec, PreTrainedModel]) -> None:
    codec, model = tiny
    suite, _ = build_world_suite(WorldConfig(kind="control"), 0)
    examples = [encode_example(codec, p.prompt, p.solution, 160) for p in suite.orgs[0].val[:5]]
    total, count = 0.0, 0
    with torch.no_grad():
        for e in examples:
            logits = model(input_ids=torch.tensor([e.ids])).logits[0]
            logp = torch.log_softmax(logits, dim=-1)
            for i in e.completion_positions:
                total -= float(logp[i - 1, e.labels[i]])
                count += 1
    assert completion_nll(model, examples, codec.pad_id, batch_size=2) == pytest.approx(
        total / count, rel=1e-4
    )
    with pytest.raises(ValueError, match="no examples"):
        completion_nll(model, [], 0)


def test_bundle_share_of_the_batch_grows_with_its_size(
    tiny: tuple[Codec, PreTrainedModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    """n_kd = min(8, batch // 2, |bundle|): a 2-entry bundle takes 2 sequences of each batch."""
    import agent.student as student

    codec, model = tiny
    suite, _ = build_world_suite(WorldConfig(kind="control"), 0)
    private = [encode_example(codec, p.prompt, p.solution, 160) for p in suite.orgs[0].train[:20]]
    seen: list[int] = []

    def spy(batch: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
        seen.append(len(batch))
        return collate(batch, pad_id)

    monkeypatch.setattr(student, "collate", spy)
    for n_entries, expect in ((2, 2), (30, 8)):
        problems = suite.orgs[1].train[:n_entries]
        entries = []
        for p in problems:
            ids = [*codec.encode(p.solution), codec.eos_id]
            k = 4
            entries.append(
                BundleEntry(
                    p.pid,
                    p.prompt,
                    p.solution,
                    torch.tensor(ids).numpy().astype("int32"),
                    torch.zeros((len(ids), k), dtype=torch.int32).numpy(),
                    torch.full((len(ids), k), -math.log(k)).numpy().astype("float32"),
                )
            )
        payload = BundlePayload("t", codec.identity, 4, tuple(entries))
        seen.clear()
        distil(
            model,
            codec,
            payload,
            private,
            steps=2,
            batch_size=16,
            optimizer=make_optimizer(model, 1e-3),
            cfg=DistillConfig(),
            seed=0,
        )
        assert seen == [16 - expect, expect] * 2, (n_entries, seen)
