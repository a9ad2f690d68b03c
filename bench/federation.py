"""The federation benchmark: local-only, random, heuristic, central-kd, knexa (LinUCB) and oracle.

The world, the mechanism, the metrics and the analysis are `sim.federation`'s (pre-registered in
the README). Every (seed, method) result is saved as it finishes under
``bench/results/federation-runs/<world>/`` and a rerun resumes from what is saved; the merge (each
method over the seeds it finished, each comparison over the seeds both sides finished) is written
to ``bench/results/federation.json`` (``federation-control.json`` for ``--world control``), with
plots.

Run: ``.venv/bin/python bench/federation.py --jobs 2`` (10 seeds x 6 methods; many hours on a 2-core
CPU: stop and rerun at will), ``--world control`` for the homogeneous control world, ``--smoke`` for
a seconds-scale run, ``--merge-only`` to summarise what is saved so far. ``--backend ray`` runs every
(seed, method) as a Ray task (the ``.[sim]`` extra) on a local cluster of ``--jobs`` CPUs, or on the
cluster at ``--ray-address``; each task rebuilds its seed's world (seeded, so identically).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if sys.path[0] != str(ROOT):  # runnable as a plain script, ahead of bench/ (bench/matchmaker.py)
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from agent.sandbox import Evaluator, isolation_level  # noqa: E402
from sim.fanout import fan_out  # noqa: E402
from sim.federation import (  # noqa: E402
    METHODS,
    FederationConfig,
    build_bases,
    control_config,
    load_results,
    result_path,
    run_all,
    smoke_config,
    summarise,
)


def make_config(world: str, smoke: bool) -> FederationConfig:
    if smoke:
        return smoke_config(world=replace(smoke_config().world, kind=world))  # type: ignore[arg-type]
    return control_config() if world == "control" else FederationConfig()


def _run_seed(
    cfg: FederationConfig, seed: int, methods: Sequence[str], out: Path, threads: int, verbose: bool
) -> int:
    torch.set_num_threads(threads)
    codec, bases = build_bases(cfg)
    log = (lambda line: print(line, flush=True)) if verbose else None
    run_all(cfg, methods, out, codec, bases, Evaluator(workers=cfg.workers), seeds=[seed], log=log)
    return seed


def _run_job(job: tuple[FederationConfig, int, str, Path, int, bool]) -> str:
    """One (seed, method) as a Ray task: saved under the runs folder as it finishes (on a cluster,
    `--runs` must be a folder every node shares)."""
    cfg, seed, method, out, threads, verbose = job
    _run_seed(cfg, seed, [method], out, threads, verbose)
    return f"seed{seed}-{method}"


def converged_pairs(results: Sequence[dict[str, Any]], method: str, last: int = 5) -> list[dict[str, Any]]:
    """Per seed: how often each directed (teacher, student) pair was chosen in the last rounds."""
    out = []
    for res in sorted((r for r in results if r["method"] == method), key=lambda r: r["seed"]):
        counts = Counter((t, s) for rec in res["rounds"][-last:] for t, s in rec["pairs"])
        out.append(
            {
                "seed": res["seed"],
                "pairs": [{"teacher": t, "student": s, "count": n} for (t, s), n in sorted(counts.items())],
                "world": res["world"],
            }
        )
    return out


def students_paired(results: Sequence[dict[str, Any]], method: str) -> dict[str, list[int]]:
    """Per seed, how many students `method` paired in each round (a pairing may leave some alone)."""
    return {
        str(res["seed"]): [len(rec["pairs"]) for rec in res["rounds"]]
        for res in sorted((r for r in results if r["method"] == method), key=lambda r: int(r["seed"]))
    }


def per_org_finals(results: Sequence[dict[str, Any]], seeds: Sequence[int]) -> list[dict[str, Any]]:
    """Every organisation's final own-test Pass@1 under every method, beside its public size and
    hidden strength and quality (who gains from collaboration, and who loses)."""
    by = {(r["seed"], r["method"]): r for r in results if r["seed"] in seeds}
    rows = []
    for seed in seeds:
        methods = sorted(m for s, m in by if s == seed)
        world = by[(seed, methods[0])]["world"]
        for org in world:
            name = org["org"]
            rows.append(
                {
                    "seed": seed,
                    **org,
                    "start": by[(seed, methods[0])]["start"]["own_test"][name],
                    "final": {m: by[(seed, m)]["rounds"][-1]["own_test"][name] for m in methods},
                    "mean_reward": {
                        m: statistics.fmean(rec["rewards"][name] for rec in by[(seed, m)]["rounds"])
                        for m in methods
                    },
                }
            )
    return rows


def reward_curves(results: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
    """Mean Eq. 3 reward per round per method (over organisations and seeds)."""
    by: dict[str, list[list[float]]] = {}
    for res in results:
        per_round = [statistics.fmean(rec["rewards"].values()) for rec in res["rounds"]]
        by.setdefault(res["method"], []).append(per_round)
    return {m: [statistics.fmean(col) for col in zip(*rows, strict=True)] for m, rows in by.items()}


def plot_all(result: dict[str, Any], out: Path, stem: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = result["summary"]
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    for ax, key, label in (
        (axes[0], "curve_primary", "own-test Pass@1 (95% CI over seeds)"),
        (axes[1], "curve_secondary", "balanced global test Pass@1 (95% CI over seeds)"),
    ):
        for method, curve in summary.get(key, {}).items():
            xs = [c["round"] for c in curve]
            ms = [c["mean"] for c in curve]
            cis = [c["ci95"] for c in curve]
            n_seeds = len(summary["seeds_by_method"][method])
            ax.plot(xs, ms, marker="o", label=f"{method} ({n_seeds} seeds)")
            ax.fill_between(
                xs,
                [m - c for m, c in zip(ms, cis, strict=True)],
                [m + c for m, c in zip(ms, cis, strict=True)],
                alpha=0.12,
            )
        ax.set_xlabel("round")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    for method, ys in result["reward_curve"].items():
        axes[2].plot(range(1, len(ys) + 1), ys, label=method)
    axes[2].set_xlabel("round")
    axes[2].set_ylabel("mean Eq. 3 reward (nats)")
    fig.tight_layout()
    fig.savefig(out / f"{stem}.png", dpi=110)
    plt.close(fig)

    finals = result.get("per_org_finals", [])
    others = sorted({m for row in finals for m in row["final"]} - {"local-only"})
    if others and any("local-only" in row["final"] for row in finals):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for i, method in enumerate(others):
            paired = [row for row in finals if {method, "local-only"} <= set(row["final"])]
            xs = [row["train"] * (1 + 0.04 * i) for row in paired]
            ys = [row["final"][method] - row["final"]["local-only"] for row in paired]
            ax.scatter(xs, ys, label=method, alpha=0.7, s=18)
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("organisation's private training problems (log)")
        ax.set_ylabel("final own-test Pass@1 minus local-only's")
        ax.set_title("per-organisation finals against training alone")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / f"{stem}-orgs.png", dpi=110)
        plt.close(fig)

    graphs = result["converged_pairs"].get("knexa", [])[:5]
    if not graphs:
        return
    fig, axs = plt.subplots(1, len(graphs), figsize=(3.6 * len(graphs), 4), squeeze=False)
    for ax, graph in zip(axs[0], graphs, strict=True):
        rows = {r["org"]: r for r in graph["world"]}
        names = sorted(rows)
        pos = {
            n: (math.cos(2 * math.pi * i / len(names)), math.sin(2 * math.pi * i / len(names)))
            for i, n in enumerate(names)
        }
        most = max([p["count"] for p in graph["pairs"]], default=1)
        for p in graph["pairs"]:
            (x0, y0), (x1, y1) = pos[p["teacher"]], pos[p["student"]]
            ax.annotate(
                "",
                xy=(x1 * 0.8, y1 * 0.8),
                xytext=(x0 * 0.8, y0 * 0.8),
                arrowprops={
                    "arrowstyle": "->",
                    "lw": 0.5 + 3 * p["count"] / most,
                    "alpha": 0.3 + 0.7 * p["count"] / most,
                    "connectionstyle": "arc3,rad=0.15",
                },
            )
        for n in names:
            r = rows[n]
            quality = " LQ" if r["low_quality"] else ""
            label = f"{n} {r['base']}\nn={r['train']}{quality}\n{next(iter(r['top_categories']))}"
            ax.text(
                *pos[n],
                label,
                ha="center",
                va="center",
                fontsize=7,
                bbox={"boxstyle": "round", "fc": "#ffd" if r["strong"] else "white", "ec": "grey"},
            )
        ax.set_xlim(-1.5, 1.5)
        ax.set_ylim(-1.5, 1.5)
        ax.set_axis_off()
        ax.set_title(f"seed {graph['seed']}", fontsize=9)
    fig.suptitle(
        "knexa: teacher -> student pairs in the last 5 rounds "
        "(width = how often; yellow = strong base, LQ = low quality)"
    )
    fig.tight_layout()
    fig.savefig(out / f"{stem}-pairs.png", dpi=110)
    plt.close(fig)


def merge(
    cfg: FederationConfig, runs: Path, out: Path, stem: str, methods: Sequence[str], seconds: float
) -> dict[str, Any]:
    results = [r for r in load_results(runs) if r["method"] in methods]
    summary = summarise(results)
    result = {
        "config": asdict(cfg),
        "methods": list(methods),
        "summary": summary,
        "reward_curve": reward_curves(results),
        "per_org_finals": per_org_finals(results, sorted({int(r["seed"]) for r in results})),
        "converged_pairs": {
            m: converged_pairs(results, m) for m in methods if m in ("random", "heuristic", "knexa", "oracle")
        },
        "students_paired": {m: students_paired(results, m) for m in methods if m in ("knexa", "oracle")},
        "worlds": {str(r["seed"]): r["world"] for r in results if r["method"] == results[0]["method"]}
        if results
        else {},
        "saved_results": sorted(f"seed{r['seed']}-{r['method']}" for r in results),
        "partial_results_dir": str(runs.relative_to(ROOT)) if runs.is_relative_to(ROOT) else str(runs),
        "seconds_this_invocation": seconds,
        "sandbox_isolation": isolation_level(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1, default=str))
    if summary["methods"]:
        plot_all(result, out, stem)
    return result


def print_summary(result: dict[str, Any]) -> None:
    s = result["summary"]
    print(f"seeds finished by every method: {s['seeds']}")
    for m, seeds in s["seeds_by_method"].items():
        print(f"{m:>10}: {len(seeds)} seeds {seeds}")
    for m in s["methods"]:
        p, g, r = s["primary"][m], s["secondary"][m], s["mean_reward"][m]
        vs = s["primary_paired"].get(f"{m} - random")
        print(
            f"{m:>10}: own-test {p['mean']:.3f} ±{p['ci95']:.3f}  global {g['mean']:.3f} ±{g['ci95']:.3f}  "
            f"reward {r['mean']:+.4f}"
            + ("" if vs is None else f"  vs random {vs['mean']:+.3f} ±{vs['ci95']:.3f}")
        )
    if "knexa_over_random" in s:
        k = s["knexa_over_random"]
        print(f"knexa / random (primary): {k['mean']:.2f} [{k['low']:.2f}, {k['high']:.2f}]")
    for key, what in (("share_of_oracle_gain", "primary"), ("share_of_oracle_reward_gain", "Eq. 3 reward")):
        if key in s:
            shares = {m: None if v is None else round(v, 2) for m, v in s[key].items()}
            print(f"share of the oracle's {what} gain over local-only (None: it gains nothing):", shares)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", choices=("hetero", "control"), default="hetero")
    ap.add_argument("--smoke", action="store_true", help="seconds-scale configuration (CI)")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds (default 10; 1 with --smoke)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods")
    ap.add_argument("--jobs", type=int, default=1, help="seeds run in parallel processes (Ray: local CPUs)")
    ap.add_argument(
        "--backend",
        choices=("processes", "ray"),
        default="processes",
        help="processes: --jobs local processes, no Ray needed; ray: every (seed, method) a Ray task",
    )
    ap.add_argument("--ray-address", default=None, help="a Ray cluster to join (default: a local one)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per job")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--runs", type=Path, default=None, help="where (seed, method) results are saved")
    ap.add_argument("--merge-only", action="store_true", help="summarise the saved results, run nothing")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    cfg = make_config(args.world, args.smoke)
    if args.seeds is not None:
        cfg = replace(cfg, seeds=tuple(range(args.seeds)))
    if args.rounds is not None:
        cfg = replace(cfg, rounds=args.rounds)
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; choose from {METHODS}")
    stem = "federation" if args.world == "hetero" else "federation-control"
    if args.smoke:
        stem += "-smoke"
    runs = args.runs or args.out / "federation-runs" / (args.world + ("-smoke" if args.smoke else ""))
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if not args.merge_only:
        build_bases(cfg)  # pretrain (cached) once before any worker loads the bases
        if args.backend == "ray":
            jobs = [
                (cfg, s, m, runs, args.threads, args.verbose)
                for s in cfg.seeds
                for m in methods
                if not result_path(runs, s, m).exists()  # resume: what is saved is not run again
            ]
            for name in fan_out(
                _run_job, jobs, backend="ray", workers=args.jobs, ray_address=args.ray_address
            ):
                print(f"{name} done", flush=True)
        elif args.jobs > 1:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
                futures = [
                    pool.submit(_run_seed, cfg, s, methods, runs, args.threads, args.verbose)
                    for s in cfg.seeds
                ]
                for f in futures:
                    print(f"seed {f.result()} done", flush=True)
        else:
            for s in cfg.seeds:
                _run_seed(cfg, s, methods, runs, args.threads, args.verbose)
    result = merge(cfg, runs, args.out, stem, methods, time.time() - t0)
    print_summary(result)
    print(f"wrote {args.out / (stem + '.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
