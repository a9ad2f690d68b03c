"""Pairing policies, result aggregation, and a tiny end-to-end federation run."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from sim.experiment import (
    RoundOutcome,
    check_pairs,
    mean_ci,
    random_pairing,
    round_robin_pairing,
    summarise,
)

ORGS = ["org0", "org1", "org2", "org3", "org4"]


@pytest.mark.parametrize("pairing", [random_pairing, round_robin_pairing])
def test_pairings_are_valid_matchings(pairing: object) -> None:
    rng = random.Random(0)
    history: list[RoundOutcome] = []
    for r in range(8):
        pairs = pairing(r, ORGS, rng, history)  # type: ignore[operator]
        check_pairs(pairs, ORGS)
        assert sorted(s for _, s in pairs) == ORGS  # everyone is a student once
    assert random_pairing(0, ["solo"], rng, history) == []


def test_round_robin_visits_every_teacher_and_random_is_seeded() -> None:
    seen = {s: set() for s in ORGS}
    for r in range(len(ORGS) - 1):
        for t, s in round_robin_pairing(r, ORGS, random.Random(0), []):
            seen[s].add(t)
    assert all(seen[s] == set(ORGS) - {s} for s in ORGS)
    a = [random_pairing(r, ORGS, random.Random(4), []) for r in range(3)]
    b = [random_pairing(r, ORGS, random.Random(4), []) for r in range(3)]
    assert a == b


def test_check_pairs_rejects_bad_matchings() -> None:
    with pytest.raises(ValueError, match="itself"):
        check_pairs([("org0", "org0")], ORGS)
    with pytest.raises(ValueError, match="twice"):
        check_pairs([("org0", "org1"), ("org0", "org2")], ORGS)
    with pytest.raises(ValueError, match="unknown"):
        check_pairs([("org0", "mallory")], ORGS)


def test_mean_ci_and_summary() -> None:
    assert mean_ci([0.5]) == {"mean": 0.5, "ci95": 0.0, "n": 1.0}
    ci = mean_ci([0.1, 0.2, 0.3])
    assert ci["mean"] == pytest.approx(0.2)
    assert ci["ci95"] == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-4)

    def seed(local: float, rnd: float) -> dict[str, object]:
        def rec(v: float) -> list[dict[str, object]]:
            by_category = {"a": {"strings": v, "lists": 0.0}, "b": {"strings": 0.0, "lists": v}}
            return [
                {
                    "round": 1,
                    "pairs": [],
                    "gains": {},
                    "test": {"a": v, "b": v},
                    "test_by_category": by_category,
                }
            ]

        mixes = {"a": {"strings": 1.0, "lists": 0.0}, "b": {"strings": 0.0, "lists": 1.0}}
        return {
            "start": {"a": 0.0, "b": 0.0},
            "mixes": mixes,
            "methods": {"local-only": rec(local), "random": rec(rnd)},
        }

    summary = summarise([seed(0.2, 0.3), seed(0.4, 0.5)], rounds=1)
    ratio = summary["ratio_vs_random"]["local-only"]
    assert ratio["mean"] == pytest.approx(0.6 / 0.8)  # a ratio of means, not a mean of ratios
    assert ratio["low"] <= ratio["mean"] <= ratio["high"]
    assert summary["final"]["random"]["mean"] == pytest.approx(0.4)
    assert summary["vs_local"]["random"]["mean"] == pytest.approx(0.1)
    assert summary["vs_local"]["random"]["ci95"] == pytest.approx(0.0, abs=1e-12)
    assert [c["mean"] for c in summary["curve"]["local-only"]] == pytest.approx([0.0, 0.3])
    assert [c["round"] for c in summary["curve"]["local-only"]] == [0.0, 1.0]
    # each organisation only meets its own category, which it solves at rate v
    assert summary["final_own_mix"]["random"]["mean"] == pytest.approx(0.4)


@pytest.mark.slow
def test_matchmaker_policies_pair_agents_and_learn_from_their_gains(zoo_cache: Path) -> None:
    """The `knexa` (LinUCB) and `heuristic` methods on a tiny federation: valid matchings each round,
    the bandit's state moves with the reported gains, and two runs with one seed decide the same."""
    from agent.data.splits import build_suite
    from agent.sandbox import Evaluator
    from agent.world import build_world, make_agents, tiny_config
    from sim.experiment import run_method
    from sim.matchmaking import PolicyPairing

    cfg = tiny_config(rounds=2)
    codec, bases = build_world(cfg)
    suite = build_suite(
        n_orgs=cfg.n_orgs,
        train_per_org=cfg.train_per_org,
        val_per_org=cfg.val_per_org,
        transfer_per_category=cfg.transfer_per_category,
        test_per_category=cfg.test_per_category,
        seed=0,
    )
    evaluator = Evaluator(workers=1)
    names = [org.org for org in suite.orgs]
    for policy in ("linucb", "heuristic"):
        pairing = PolicyPairing(policy)  # type: ignore[arg-type]
        history = run_method(make_agents(cfg, suite, codec, bases, 0), suite, cfg, pairing, evaluator, 0)
        assert len(history) == 2
        for record in history:
            check_pairs(record.pairs, names)
            assert len(record.pairs) == cfg.n_orgs
        if policy == "linucb":
            digests = [decision.state_digest for decision in pairing.decisions]
            assert digests[0] != digests[1]  # round 1's gains were observed before round 2
            first = [decision.pairs for decision in pairing.decisions]
            run_method(make_agents(cfg, suite, codec, bases, 0), suite, cfg, pairing, evaluator, 0)
            assert [decision.pairs for decision in pairing.decisions] == first
