"""The heterogeneous federation harness (sim/federation.py), its analysis, the pair probe's statistics."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest

from sim.federation import FederationConfig, Pair, best_assignment, eq3, summarise
from tests.bench_scripts import load_bench


def _brute_force(values: dict[Pair, float], local: dict[str, float], orgs: list[str]) -> float:
    best = -1e18
    for teachers in itertools.product([None, *orgs], repeat=len(orgs)):
        used = [t for t in teachers if t is not None]
        if len(used) != len(set(used)) or any(t == s for t, s in zip(teachers, orgs, strict=True)):
            continue
        total = sum(local[s] if t is None else values[(t, s)] for t, s in zip(teachers, orgs, strict=True))
        best = max(best, total)
    return best


def test_best_assignment_is_the_best_matching_with_a_no_teacher_option() -> None:
    orgs = ["a", "b", "c", "d"]
    for trial in range(20):
        rng = random.Random(trial)
        values = {(t, s): rng.gauss(0, 1) for t in orgs for s in orgs if t != s}
        local = {s: rng.gauss(0, 1) for s in orgs}
        pairs = best_assignment(values, local, orgs)
        teachers = [t for t, _ in pairs]
        assert len(teachers) == len(set(teachers))
        assert all(t != s for t, s in pairs)
        chosen = {s: t for t, s in pairs}
        total = sum(values[(chosen[s], s)] if s in chosen else local[s] for s in orgs)
        assert total == pytest.approx(_brute_force(values, local, orgs))


def test_eq3_charges_for_bundle_size() -> None:
    """A teacher cannot buy a better reward by padding its bundle: every KiB costs delta."""
    cfg = FederationConfig()
    assert eq3(cfg, 1.0, 0.9, 0.0) == pytest.approx(0.1)
    assert eq3(cfg, 1.0, 0.9, 1000.0) == pytest.approx(0.1 - 1000 * cfg.delta_per_kib)
    assert eq3(cfg, 1.0, 1.1, 0.0) < 0  # a harmful bundle is a negative reward


def _result(method: str, seed: int, own: float, glob: float, reward: float) -> dict[str, Any]:
    rec = {"round": 1, "pairs": [], "rewards": {"a": reward, "b": reward}}
    rec |= {"own_test": {"a": own, "b": own}, "global_test": {"a": glob, "b": glob}}
    start = {"own_test": {"a": 0.0, "b": 0.0}, "global_test": {"a": 0.0, "b": 0.0}}
    return {"method": method, "seed": seed, "start": start, "rounds": [rec]}


def test_summary_pairs_seeds_and_reports_ratio_and_oracle_share() -> None:
    results = []
    for seed, base in enumerate((0.2, 0.4)):
        results += [
            _result("local-only", seed, base, 0.1, 0.01),
            _result("random", seed, base + 0.1, 0.2, 0.02),
            _result("knexa", seed, base + 0.2, 0.2, 0.03),
            _result("oracle", seed, base + 0.4, 0.3, 0.05),
        ]
    results.append(_result("knexa", 2, 0.9, 0.9, 0.9))  # a seed not every method finished
    results.append(_result("random", 2, 0.8, 0.9, 0.9))
    s = summarise(results)
    assert s["seeds"] == [0, 1]
    assert s["seeds_by_method"]["knexa"] == [0, 1, 2]
    # a method's own figure uses every seed it finished ...
    assert s["primary"]["knexa"]["mean"] == pytest.approx((0.4 + 0.6 + 0.9) / 3)
    assert s["primary"]["oracle"]["n"] == 2
    # ... a comparison the seeds both sides finished: seed 2 counts for knexa - random only
    assert s["primary_paired"]["knexa - local-only"]["n"] == 2
    assert s["primary_paired"]["knexa - random"]["n"] == 3
    assert s["primary_paired"]["knexa - random"]["mean"] == pytest.approx(0.1)
    assert s["primary_paired"]["knexa - random"]["ci95"] == pytest.approx(0.0, abs=1e-12)
    assert s["knexa_over_random"]["mean"] == pytest.approx(1.9 / 1.6)
    assert s["knexa_over_random"]["n"] == 3
    assert s["share_of_oracle_gain"]["knexa"] == pytest.approx(0.5)
    assert s["share_of_oracle_gain_seeds"]["knexa"] == [0, 1]
    assert s["secondary"]["oracle"]["mean"] == pytest.approx(0.3)
    assert s["mean_reward"]["random"]["mean"] == pytest.approx((0.02 + 0.02 + 0.9) / 3)
    assert [c["round"] for c in s["curve_primary"]["random"]] == [0.0, 1.0]


def test_summary_share_of_oracle_rests_on_the_seeds_the_oracle_finished() -> None:
    """The oracle costs the most and may run on fewer seeds: its share is measured only there,
    while knexa / random keeps every seed both finished."""
    results = []
    for seed, base in enumerate((0.2, 0.4, 0.3)):
        results += [
            _result("local-only", seed, base, 0.1, 0.01),
            _result("random", seed, base, 0.2, 0.02),
            _result("knexa", seed, base + 0.1 * (seed + 1), 0.2, 0.03),
        ]
    results.append(_result("oracle", 0, 0.6, 0.3, 0.05))
    s = summarise(results)
    assert s["seeds"] == [0]
    assert s["knexa_over_random"]["n"] == 3
    assert s["share_of_oracle_gain_seeds"]["knexa"] == [0]
    assert s["share_of_oracle_gain"]["knexa"] == pytest.approx(0.1 / 0.4)
    assert s["share_of_oracle_gain"]["random"] == pytest.approx(0.0)
    assert s["share_of_oracle_gain_oracle_gap"]["knexa"] == pytest.approx(0.4)


def test_summary_share_is_none_when_the_oracle_gains_nothing() -> None:
    """A greedy oracle on the next round's reward need not win at the end: then a share of its
    gain is undefined (None), not a ratio to a negative gap; the reward share is still measured."""
    results = []
    for seed in range(2):
        results += [
            _result("local-only", seed, 0.3, 0.1, 0.01),
            _result("knexa", seed, 0.35, 0.1, 0.02),
            _result("oracle", seed, 0.25, 0.1, 0.05),
        ]
    s = summarise(results)
    assert s["share_of_oracle_gain"]["knexa"] is None
    assert s["share_of_oracle_gain_oracle_gap"]["knexa"] == pytest.approx(-0.05)
    assert s["share_of_oracle_reward_gain"]["knexa"] == pytest.approx(0.25)


def test_probe_statistics_find_a_planted_structure_and_not_noise() -> None:
    probe = load_bench("pair_probe")
    orgs = ["a", "b", "c", "d", "e"]
    rng = random.Random(0)
    truth = {(t, s): rng.gauss(0, 1) for t in orgs for s in orgs if t != s}
    student = {s: rng.gauss(0, 5) for s in orgs}  # big per-student offsets: what centring removes
    reps = [{p: v + student[p[1]] + rng.gauss(0, 0.05) + 3 * k for p, v in truth.items()} for k in range(2)]
    c0, c1 = probe.centred(reps[0]), probe.centred(reps[1])
    pairs = sorted(truth)
    assert probe.pearson([c0[p] for p in pairs], [c1[p] for p in pairs]) > 0.95
    gain = probe.heldout_gain(reps[0], reps[1], orgs)
    best = best_assignment(truth, dict.fromkeys(orgs, -1000000.0), orgs)
    expected = sum(truth[p] for p in best) / len(orgs) - sum(truth.values()) / len(truth)
    assert gain == pytest.approx(expected, abs=0.1)
    noise = [{p: rng.gauss(0, 1) for p in truth} for _ in range(2)]
    n0, n1 = probe.centred(noise[0]), probe.centred(noise[1])
    assert abs(probe.pearson([n0[p] for p in pairs], [n1[p] for p in pairs])) < 0.6


@pytest.mark.slow
def test_smoke_federation_runs_every_method_saves_and_resumes(zoo_cache: Path, tmp_path: Path) -> None:
    """CI's tiny configuration of the new world: all six methods, one JSON per (seed, method),
    a rerun computes nothing new, and the merge carries the pre-registered analysis."""
    bench = load_bench("federation")
    out = tmp_path / "results"
    assert bench.main(["--smoke", "--rounds", "1", "--out", str(out)]) == 0
    runs = out / "federation-runs" / "hetero-smoke"
    saved = sorted(p.name for p in runs.glob("seed0-*.json"))
    assert saved == sorted(
        [f"seed0-{m}.json" for m in ("local-only", "random", "heuristic", "central-kd", "knexa", "oracle")]
        + ["seed0-world.json"]
    )
    stamps = {p: p.stat().st_mtime_ns for p in runs.iterdir()}
    assert bench.main(["--smoke", "--rounds", "1", "--out", str(out)]) == 0
    assert {p: p.stat().st_mtime_ns for p in runs.iterdir()} == stamps  # resumed: nothing rerun
    result = json.loads((out / "federation-smoke.json").read_text())
    summary = result["summary"]
    assert summary["seeds"] == [0]
    assert set(summary["primary"]) == set(result["methods"])
    assert "knexa_over_random" in summary
    assert "share_of_oracle_gain" in summary
    world = json.loads((runs / "seed0-world.json").read_text())
    assert sum(row["low_quality"] for row in world) == 1
    for method in result["methods"]:
        res = json.loads((runs / f"seed0-{method}.json").read_text())
        (rec,) = res["rounds"]
        assert set(rec["rewards"]) == {row["org"] for row in world}
        teachers = [t for t, _ in rec["pairs"]]
        assert len(teachers) == len(set(teachers))
        if method in ("random", "knexa", "heuristic"):
            assert len(rec["pairs"]) == len(world)  # round 1: every UCB beats "no teacher" (0)
        if method == "oracle":
            values = rec["oracle_values"]
            assert len(values) == len(world) * len(world)  # every teacher and "alone" per student
            alone = sum(v for k, v in values.items() if k.startswith("local->"))
            assert sum(rec["rewards"].values()) >= alone - 1e-9  # no worse than everyone alone
