"""Is there a pair structure for a matchmaker to find? The pre-registered probe of the federation.

Per seed, in the benchmark's world (`sim.federation.FederationConfig`, heterogeneous by default):
warm up, run ``--rounds`` (8) rounds of random pairing, then, from that state, try *every* directed
pair (teacher, student) twice: two replicates that differ only in the student's batch order (its
training seed), with the same targeted bundle, each on a fresh clone, each worth one round's
budget; plus local training, twice, for every student. The value of a trial is its Eq. 3 reward.

Recorded per seed (and pooled):

* ``split_half_r``: the student-centred split-half correlation. Within each replicate, each
  student's mean over its teachers is subtracted; r is Pearson's between the two replicates'
  centred values over all directed pairs. It says whether *who teaches whom* repeats, beyond how
  much each student improves anyway. (Aim: >= 0.5.)
* ``heldout_gain``: choose the best matching (each teacher once, each student once, no "alone"
  option) on one replicate, score it on the other against a random teacher for each student
  (the student's mean over teachers on that replicate), per student; both directions averaged.
  In reward units (nats) and as a multiple of the mean |reward| of all trials. (Aim: >= 1.)
* the same gain when the matching may leave a student alone (its local value on the other
  replicate), and the local-training values.

Run: ``.venv/bin/python bench/pair_probe.py --seeds 2 [--control]`` (``--smoke`` for seconds);
writes ``bench/results/pair-probe.json`` (``pair-probe-control.json`` with ``--control``).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if sys.path[0] != str(ROOT):  # runnable as a plain script, ahead of bench/ (bench/matchmaker.py)
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from agent.sandbox import Evaluator  # noqa: E402
from sim.federation import (  # noqa: E402
    FederationConfig,
    Pair,
    TeacherAnswers,
    best_assignment,
    build_bases,
    build_seed_world,
    control_config,
    learn_from,
    run_seed_method,
    smoke_config,
    targets,
    train_alone,
)

REPLICATE_SEED_STEP = 7919


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return math.nan
    return statistics.correlation(list(xs), list(ys))


def centred(values: Mapping[Pair, float]) -> dict[Pair, float]:
    """Each value minus its student's mean over teachers (within one replicate)."""
    students = {s for _, s in values}
    means = {s: statistics.fmean(v for (_, s2), v in values.items() if s2 == s) for s in students}
    return {p: v - means[p[1]] for p, v in values.items()}


def heldout_gain(
    pick: Mapping[Pair, float],
    score: Mapping[Pair, float],
    orgs: Sequence[str],
    local_pick: Mapping[str, float] | None = None,
    local_score: Mapping[str, float] | None = None,
) -> float:
    """Mean per student of (score of the matching chosen on ``pick``) minus (the student's mean
    score over teachers: a random teacher). With ``local_*`` the matching may leave a student alone."""
    alone = local_pick if local_pick is not None else dict.fromkeys(orgs, -1000000.0)
    pairs = best_assignment(pick, alone, orgs)
    teacher_of = {s: t for t, s in pairs}
    gains = []
    for s in orgs:
        mean_s = statistics.fmean(v for (_, s2), v in score.items() if s2 == s)
        if s in teacher_of:
            got = score[(teacher_of[s], s)]
        else:
            assert local_score is not None
            got = local_score[s]
        gains.append(got - mean_s)
    return statistics.fmean(gains)


def probe_seed(
    cfg: FederationConfig, seed: int, rounds: int, codec: Any, bases: Any, evaluator: Evaluator
) -> dict[str, Any]:
    world = build_seed_world(cfg, seed, codec, bases)
    t0 = time.time()
    # `rounds` random rounds (no test evaluations: they change nothing), then the probe from there.
    history = run_seed_method(
        replace(cfg, rounds=rounds),
        world,
        "random",
        evaluator,
        log=lambda line: print(f"[{time.time() - t0:.0f} s] {line}", flush=True),
        start_tests=({}, {}),
        keep_agents=True,
        tests=False,
    )
    agents = history.pop("agents")
    names = [a.name for a in agents]
    by_name = {a.name: a for a in agents}
    answers = TeacherAnswers(cfg, evaluator)
    values: list[dict[Pair, float]] = [{}, {}]
    local: list[dict[str, float]] = [{}, {}]
    sizes: dict[str, int] = {}
    for s in names:
        items = targets(world, cfg, s)
        for t in names:
            if t == s:
                continue
            payload = answers.bundle(by_name[t], items)
            sizes[f"{t}->{s}"] = len(payload.entries)
            for rep in range(2):
                clone = by_name[s].clone()
                clone.seed = by_name[s].seed + REPLICATE_SEED_STEP * (rep + 1)
                values[rep][(t, s)] = learn_from(cfg, clone, payload, evaluator)
        for rep in range(2):
            clone = by_name[s].clone()
            clone.seed = by_name[s].seed + REPLICATE_SEED_STEP * (rep + 1)
            local[rep][s] = train_alone(cfg, clone)
        print(f"[{time.time() - t0:.0f} s] seed {seed}: probed every teacher of {s}", flush=True)
    pairs = sorted(values[0])
    c0, c1 = centred(values[0]), centred(values[1])
    mean_abs = statistics.fmean(abs(v) for rep in values for v in rep.values())
    gain = statistics.fmean(
        [heldout_gain(values[0], values[1], names), heldout_gain(values[1], values[0], names)]
    )
    gain_alone = statistics.fmean(
        [
            heldout_gain(values[0], values[1], names, local[0], local[1]),
            heldout_gain(values[1], values[0], names, local[1], local[0]),
        ]
    )
    return {
        "seed": seed,
        "world": world.rows(),
        "random_rounds": history["rounds"],
        "pairs": [f"{t}->{s}" for t, s in pairs],
        "values": [[values[rep][p] for p in pairs] for rep in range(2)],
        "local": local,
        "bundle_sizes": sizes,
        "empty_bundle_share": sum(1 for n in sizes.values() if n == 0) / len(sizes),
        "split_half_r": pearson([c0[p] for p in pairs], [c1[p] for p in pairs]),
        "raw_split_half_r": pearson([values[0][p] for p in pairs], [values[1][p] for p in pairs]),
        "mean_abs_reward": mean_abs,
        "heldout_gain": gain,
        "heldout_gain_in_mean_abs": gain / mean_abs if mean_abs else math.nan,
        "heldout_gain_with_alone": gain_alone,
        "heldout_gain_with_alone_in_mean_abs": gain_alone / mean_abs if mean_abs else math.nan,
        "seconds": time.time() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=8, help="random rounds before the probe")
    ap.add_argument("--control", action="store_true", help="the homogeneous control world")
    ap.add_argument("--smoke", action="store_true", help="seconds-scale configuration")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = smoke_config() if args.smoke else control_config() if args.control else FederationConfig()
    name = "pair-probe-smoke" if args.smoke else "pair-probe-control" if args.control else "pair-probe"
    codec, bases = build_bases(cfg)
    evaluator = Evaluator(workers=cfg.workers)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{name}.json"
    done: list[dict[str, Any]] = json.loads(path.read_text())["per_seed"] if path.exists() else []
    t0 = time.time()
    for seed in range(args.seeds):
        if any(d["seed"] == seed and d.get("random_rounds_n") == args.rounds for d in done):
            continue  # resume: this seed is saved already
        res = probe_seed(cfg, seed, args.rounds, codec, bases, evaluator)
        res["random_rounds_n"] = args.rounds
        done = [d for d in done if d["seed"] != seed] + [res]
        pooled = {
            key: statistics.fmean(d[key] for d in done)
            for key in (
                "split_half_r",
                "raw_split_half_r",
                "mean_abs_reward",
                "heldout_gain",
                "heldout_gain_in_mean_abs",
                "heldout_gain_with_alone",
                "heldout_gain_with_alone_in_mean_abs",
                "empty_bundle_share",
            )
        }
        out = {
            "config": asdict(cfg),
            "random_rounds": args.rounds,
            "pooled_mean_over_seeds": pooled,
            "per_seed": done,
            "seconds": time.time() - t0,
            "python": platform.python_version(),
            "torch": torch.__version__,
        }
        path.write_text(json.dumps(out, indent=1, default=str))
        print(
            f"seed {seed}: split-half r {res['split_half_r']:.2f} (raw {res['raw_split_half_r']:.2f}), "
            f"held-out gain {res['heldout_gain']:+.4f} nats = {res['heldout_gain_in_mean_abs']:.2f} x mean "
            f"|reward| {res['mean_abs_reward']:.4f}; with 'alone' {res['heldout_gain_with_alone']:+.4f}; "
            f"empty bundles {res['empty_bundle_share']:.0%}; {res['seconds']:.0f} s",
            flush=True,
        )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
