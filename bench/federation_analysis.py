"""Why does (or doesn't) the matchmaker beat random pairing? Evidence from a federation run's JSON.

Reads ``bench/results/federation.json`` (written by ``bench/federation.py``) and measures the three
suspects the benchmark issue names, per peer-to-peer method:

* **reward noise**: the students' reported validation gains (the bandit's rewards): their spread,
  how many are exactly zero, and the step of one validation problem;
* **context features**: whether the reward is predictable from what the matchmaker could know,
  e.g. the size of the bundle the teacher sent (its public-test pass count) vs the gain it caused;
* **learnability**: how much of the rewards' variance the teacher (or the directed pair) explains
  at all (eta squared, within each seed): under `random` pairing this is what any matchmaker
  could hope to exploit, an upper bound on what is learnable from who teaches whom;
* **exploration**: how settled each method's choices were in the last rounds (distinct teachers
  per student) and the mean bundle size students received over time.

Prints a table and writes ``bench/results/federation-analysis.json``.
Run: ``.venv/bin/python bench/federation_analysis.py [--results DIR]``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def pearson(xs: list[float], ys: list[float]) -> float:
    """Pearson correlation (NaN when either side is constant or there are fewer than 3 points)."""
    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return math.nan
    return statistics.correlation(xs, ys)


def chance_share(groups: dict[Any, list[float]]) -> float:
    """What eta squared is on average when the groups do not matter at all: (k - 1) / (n - 1)."""
    n = sum(len(g) for g in groups.values())
    return (len(groups) - 1) / (n - 1) if n > 1 else math.nan


def variance_share(groups: dict[Any, list[float]]) -> float:
    """eta squared: the share of the rewards' variance explained by the grouping (NaN if constant).

    Compare it with `chance_share`: with few rewards per group it is large even for pure noise."""
    values = [v for g in groups.values() for v in g]
    if len(values) < 3:
        return math.nan
    mean = statistics.fmean(values)
    total = sum((v - mean) ** 2 for v in values)
    if total == 0:
        return math.nan
    between = sum(len(g) * (statistics.fmean(g) - mean) ** 2 for g in groups.values() if g)
    return between / total


def analyse_method(per_seed: list[dict[str, Any]], method: str, val_size: int, last: int) -> dict[str, Any]:
    gains: list[float] = []
    sizes: list[float] = []
    paired_gain: list[float] = []
    early_sizes: list[float] = []
    late_sizes: list[float] = []
    distinct: list[float] = []
    by_teacher: list[float] = []
    by_pair: list[float] = []
    chance_teacher: list[float] = []
    chance_pair: list[float] = []
    for seed_result in per_seed:
        records = seed_result["methods"][method]
        teacher_gains: dict[str, list[float]] = defaultdict(list)
        pair_gains: dict[tuple[str, str], list[float]] = defaultdict(list)
        for record in records:
            for teacher, student in record["pairs"]:
                if student in record["gains"]:
                    teacher_gains[teacher].append(record["gains"][student])
                    pair_gains[(teacher, student)].append(record["gains"][student])
        share = variance_share(teacher_gains)
        if not math.isnan(share):
            by_teacher.append(share)
            chance_teacher.append(chance_share(teacher_gains))
        share = variance_share(pair_gains)
        if not math.isnan(share):
            by_pair.append(share)
            chance_pair.append(chance_share(pair_gains))
        half = len(records) // 2
        teachers_of: dict[str, set[str]] = defaultdict(set)
        for index, record in enumerate(records):
            for student, gain in record["gains"].items():
                gains.append(gain)
                size = record["bundle_sizes"].get(student)
                if size is not None:
                    sizes.append(float(size))
                    paired_gain.append(gain)
                    (early_sizes if index < half else late_sizes).append(float(size))
            if index >= len(records) - last:
                for teacher, student in record["pairs"]:
                    teachers_of[student].add(teacher)
        if teachers_of:
            distinct.append(statistics.fmean(len(t) for t in teachers_of.values()))
    return {
        "rewards": len(gains),
        "reward_mean": statistics.fmean(gains) if gains else math.nan,
        "reward_sd": statistics.stdev(gains) if len(gains) > 1 else math.nan,
        "reward_zero_fraction": sum(g == 0 for g in gains) / len(gains) if gains else math.nan,
        "one_validation_problem": 1.0 / val_size,
        "corr_bundle_size_gain": pearson(sizes, paired_gain),
        "bundle_size_first_half": statistics.fmean(early_sizes) if early_sizes else math.nan,
        "bundle_size_second_half": statistics.fmean(late_sizes) if late_sizes else math.nan,
        "empty_bundle_fraction": sum(s == 0 for s in sizes) / len(sizes) if sizes else math.nan,
        f"distinct_teachers_per_student_last_{last}": statistics.fmean(distinct) if distinct else math.nan,
        "reward_variance_explained_by_teacher": statistics.fmean(by_teacher) if by_teacher else math.nan,
        "by_teacher_chance_level": statistics.fmean(chance_teacher) if chance_teacher else math.nan,
        "reward_variance_explained_by_pair": statistics.fmean(by_pair) if by_pair else math.nan,
        "by_pair_chance_level": statistics.fmean(chance_pair) if chance_pair else math.nan,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--last", type=int, default=5, help="rounds counted as 'converged'")
    args = ap.parse_args(argv)
    result = json.loads((args.results / "federation.json").read_text())
    if "per_seed" not in result:
        raise SystemExit(
            "this analysis reads the first harness's federation.json (agent/experiment.py's format); "
            "the heterogeneous federation's analysis is sim.federation.summarise (bench/federation.py)"
        )
    per_seed = result["per_seed"]
    val_size = int(result["config"]["val_per_org"])
    methods = [m for m in result["methods"] if m != "local-only"]
    analysis = {m: analyse_method(per_seed, m, val_size, args.last) for m in methods}
    summary = result["summary"]
    analysis_out = {
        "methods": analysis,
        "final_balanced": {m: summary["final"][m]["mean"] for m in result["methods"]},
        "final_own_mix": {m: summary["final_own_mix"][m]["mean"] for m in result["methods"]},
    }
    (args.results / "federation-analysis.json").write_text(json.dumps(analysis_out, indent=2))
    keys = list(next(iter(analysis.values())).keys())
    width = max(len(k) for k in keys)
    print(f"{'':{width}}  " + "  ".join(f"{m:>10}" for m in methods))
    for key in keys:
        print(f"{key:{width}}  " + "  ".join(f"{analysis[m][key]:>10.3f}" for m in methods))
    print(f"wrote {args.results / 'federation-analysis.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
