"""Pair contexts: dimension, documented feature order, canonical arm enumeration."""

from __future__ import annotations

import numpy as np
import pytest

from matchmaker.context import (
    LN2,
    FeatureTable,
    all_arms,
    arm_index,
    build_contexts,
    context_dim,
    context_feature_names,
    iter_arm_blocks,
    pair_context,
)
from matchmaker.features import OrgFeatures

CATS = ("a", "b", "c")


def _f(hist: tuple[float, ...], **kw: object) -> OrgFeatures:
    base: dict[str, object] = {
        "family": "qwen",
        "size_bucket": 1,
        "lora_rank": 16,
        "pass1": 0.5,
        "pass1_delta": 0.0,
        "categories": CATS,
        "category_hist": hist,
    }
    base.update(kw)
    return OrgFeatures(**base)  # type: ignore[arg-type]


def test_dimension_and_names() -> None:
    assert context_dim(3) == len(context_feature_names(CATS)) == 15
    assert context_feature_names(CATS)[1:4] == ("comp[a]", "comp[b]", "comp[c]")


def test_pair_context_values() -> None:
    t = _f((0.8, 0.2, 0.0), pass1=0.6, pass1_delta=0.05, reputation=0.9, size_bucket=3, family="llama")
    s = _f((0.0, 0.5, 0.5), pass1=0.2, size_bucket=1, lora_rank=48)
    x = pair_context(t, s)
    names = context_feature_names(CATS)
    v = dict(zip(names, x.tolist(), strict=True))
    assert v["bias"] == 1.0
    assert v["comp[a]"] == 0.8  # teacher strong where the student has nothing
    assert v["comp[b]"] == 0.2 * 0.5
    assert v["comp[c]"] == 0.0
    assert v["hist_tv_distance"] == pytest.approx(0.8)
    assert v["teacher_pass1"] == 0.6
    assert v["pass1_diff"] == pytest.approx(0.4)
    assert v["teacher_pass1_x_complementarity"] == pytest.approx(0.6 * (1 - 0.1))
    assert v["teacher_pass1_delta"] == 0.05
    assert v["teacher_reputation"] == 0.9
    assert v["log_size_ratio"] == 2 * LN2
    assert v["abs_log_size_ratio"] == 2 * LN2
    assert v["same_family"] == 0.0
    assert v["student_capacity"] == 48 / 64
    assert v["pass1_gap_positive"] == pytest.approx(0.4)
    rev = dict(zip(names, pair_context(s, t).tolist(), strict=True))
    assert rev["log_size_ratio"] == -2 * LN2
    assert rev["pass1_gap_positive"] == 0.0


def test_complementarity_prefers_the_teacher_strong_where_the_student_is_weak() -> None:
    student = _f((1.0, 0.0, 0.0))
    same = _f((1.0, 0.0, 0.0))
    other = _f((0.0, 0.5, 0.5))
    assert pair_context(other, student)[1:4].sum() > pair_context(same, student)[1:4].sum()


def test_arms_are_canonical() -> None:
    n = 5
    t, s = all_arms(n)
    assert len(t) == n * (n - 1)
    assert not np.any(t == s)
    assert list(zip(t.tolist(), s.tolist(), strict=True)) == sorted(zip(t.tolist(), s.tolist(), strict=True))
    assert np.array_equal(arm_index(n, t, s), np.arange(len(t)))
    for max_arms in (1, 3, 4, 7, 100):
        blocks = list(iter_arm_blocks(n, max_arms))
        assert np.array_equal(np.concatenate([b[0] for b in blocks]), t)
        assert np.array_equal(np.concatenate([b[1] for b in blocks]), s)
    assert list(iter_arm_blocks(1)) == []


def test_table_canonicalises_and_validates() -> None:
    feats = {"z": _f((1.0, 0.0, 0.0)), "a": _f((0.0, 1.0, 0.0), family="phi")}
    table = FeatureTable.build(["z", "a", "z"], feats, CATS)
    assert table.org_ids == ("a", "z")
    x = build_contexts(table, *all_arms(2))
    assert x.dtype == np.float64
    assert x.flags.f_contiguous
    assert x.shape == (2, context_dim(3))
    with pytest.raises(ValueError, match="no features"):
        FeatureTable.build(["a", "q"], feats, CATS)
    with pytest.raises(ValueError, match="categories"):
        FeatureTable.build(["a"], feats, ("x", "y", "z"))
