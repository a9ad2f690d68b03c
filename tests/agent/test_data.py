"""The generated problem suite: variety, correctness of references, disjoint non-IID splits."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from agent.data import (
    CATEGORIES,
    TEMPLATES,
    Role,
    build_suite,
    check_disjoint,
    instantiate,
    pretraining_corpus,
    split_rows,
)
from agent.data.splits import Suite, all_keys
from agent.sandbox import Evaluator, Program


def _run_in_process(program: Program) -> bool:
    try:
        exec(program.script, {})
    except AssertionError:
        return False
    return True


def test_at_least_eight_categories_with_all_roles() -> None:
    assert len(CATEGORIES) >= 8
    roles = Counter((t.category, t.role) for t in TEMPLATES)
    for c in CATEGORIES:
        assert roles[(c, Role.PRIVATE)] >= 5, c
        assert roles[(c, Role.PUBLIC)] >= 1, c
        assert roles[(c, Role.HELD_OUT)] >= 1, c
    assert len({t.tid for t in TEMPLATES}) == len(TEMPLATES)


def test_every_template_reference_passes_its_tests_and_a_wrong_body_fails() -> None:
    rng = random.Random(3)
    for tpl in TEMPLATES:
        for _ in range(3):
            p = instantiate(tpl, rng)
            assert p.prompt.startswith(f"def {p.entry_point}(")
            assert '"""' in p.prompt
            assert len(p.public_tests) == 2
            assert len(p.hidden_tests) == 5
            assert not set(p.public_tests) & set(p.hidden_tests)
            assert _run_in_process(p.reference_program), p.pid
            assert _run_in_process(p.program(p.solution, p.public_tests)), p.pid
            # The tests discriminate: a constant answer fails at least one of them.
            assert not _run_in_process(p.program("    return None\n")), p.pid


def test_reference_solutions_pass_in_the_sandbox() -> None:
    suite = build_suite(n_orgs=2, train_per_org=16, val_per_org=4, seed=5)
    problems = list(suite.test) + list(suite.test_novel) + list(suite.orgs[0].train)
    results = Evaluator(workers=2).run_many([p.reference_program for p in problems])
    assert all(r.passed for r in results), [
        p.pid for p, r in zip(problems, results, strict=True) if not r.passed
    ]


@pytest.fixture(scope="module")
def suite() -> Suite:
    return build_suite(n_orgs=6, seed=0)


def test_splits_are_disjoint(suite: Suite) -> None:
    check_disjoint(suite)
    keys = all_keys(suite)
    flat = [k for ks in keys.values() for k in ks]
    assert len(flat) == len(set(flat))
    test_prompts = {p.prompt for p in suite.test} | {p.prompt for p in suite.test_novel}
    assert not test_prompts & {t.prompt for t in suite.transfer}
    for o in suite.orgs:
        assert not test_prompts & {p.prompt for p in o.train + o.val}


def test_check_disjoint_detects_a_leak(suite: Suite) -> None:
    org = suite.orgs[0]
    leaky_org = type(org)(org.org, org.mix, (*org.train, suite.test[0]), org.val)
    leaky = Suite(
        suite.seed, suite.alpha, (leaky_org, *suite.orgs[1:]), suite.transfer, suite.test, suite.test_novel
    )
    with pytest.raises(AssertionError, match="test"):
        check_disjoint(leaky)


def test_test_set_is_balanced_and_novel_split_uses_only_held_out_templates(suite: Suite) -> None:
    counts = Counter(p.category for p in suite.test)
    assert set(counts) == set(CATEGORIES)
    assert len(set(counts.values())) == 1
    held_out = {t.tid for t in TEMPLATES if t.role == Role.HELD_OUT}
    assert {p.template for p in suite.test_novel} <= held_out
    assert not held_out & {p.template for p in suite.test}
    assert not held_out & {p.template for o in suite.orgs for p in o.train + o.val}


def test_transfer_set_carries_prompts_and_public_tests_only(suite: Suite) -> None:
    item = suite.transfer[0]
    assert not hasattr(item, "solution")
    assert not hasattr(item, "hidden_tests")
    assert Counter(t.category for t in suite.transfer) == dict.fromkeys(CATEGORIES, 8)


def test_dirichlet_alpha_controls_specialisation() -> None:
    def top_share(alpha: float) -> float:
        s = build_suite(n_orgs=6, alpha=alpha, seed=1, train_per_org=64, val_per_org=8)
        shares = [max(o.category_counts().values()) / (len(o.train) + len(o.val)) for o in s.orgs]
        return sum(shares) / len(shares)

    assert top_share(0.1) > 0.5  # specialists
    assert top_share(1000.0) < 0.3  # nearly uniform over 8 categories


def test_suite_is_deterministic_and_test_set_independent_of_org_config() -> None:
    a = build_suite(n_orgs=3, seed=7, train_per_org=20, val_per_org=5)
    b = build_suite(n_orgs=3, seed=7, train_per_org=20, val_per_org=5)
    c = build_suite(n_orgs=5, seed=7, train_per_org=30, val_per_org=5)
    assert a == b
    assert a.test == c.test
    assert a.transfer == c.transfer
    assert build_suite(n_orgs=3, seed=8, train_per_org=20, val_per_org=5).test != a.test


def test_split_rows_report_the_mix(suite: Suite) -> None:
    rows: list[dict[str, Any]] = split_rows(suite)
    assert [r["org"] for r in rows] == [o.org for o in suite.orgs]
    for r, o in zip(rows, suite.orgs, strict=True):
        assert sum(r["counts"].values()) == r["train"] + r["val"] == len(o.train) + len(o.val)
        assert abs(sum(r["mix"].values()) - 1.0) < 0.01


def test_exhausted_pool_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="exhausted"):
        build_suite(n_orgs=1, train_per_org=20_000, val_per_org=1, alpha=1e-3)


def test_pretraining_corpus_has_no_task_descriptions_of_private_or_held_out_templates(suite: Suite) -> None:
    corpus = pretraining_corpus(1500, exclude={p.key for p in suite.test})
    private_or_held = {t.tid for t in TEMPLATES if t.role != Role.PUBLIC}
    held_out = {t.tid for t in TEMPLATES if t.role == Role.HELD_OUT}
    test_keys = {p.key for p in suite.test} | {p.key for p in suite.test_novel}
    assert not test_keys & {p.key for p in corpus}
    for p in corpus:
        assert p.template not in held_out
        if p.template in private_or_held:
            assert '"""' not in p.prompt  # anonymous code only: no description -> solution pairs
    assert any(p.template in private_or_held for p in corpus)
    assert pretraining_corpus(50) == pretraining_corpus(50)
