"""Matchmaker benchmark: regret of the policies on synthetic federations, and round latency.

    python bench/matchmaker.py          # full: N = 8, 32, 128 x 200 rounds x 5 seeds; timing to N = 5,000
    python bench/matchmaker.py --quick  # a smoke version (seconds)

Writes ``bench/results/matchmaker.json`` and, when matplotlib is installed,
``matchmaker_regret.png`` and ``matchmaker_timing.png``.

Regret: for each N, seed and policy, the cumulative regret of the chosen matchings against the
oracle matching (true expected gains), mean and 95% Student-t confidence interval over seeds.
Seeds 0..S-1 are used here; the LinUCB defaults were chosen on seeds 100..102 only.

Timing: one decision round at N organizations (`Policy.select`: the contexts of all N(N-1)
directed pairs, their LinUCB scores by the compiled kernel, the exact matching), each N in a
fresh process so that its peak memory is its own; beside it, the UCB kernel alone against a BLAS
(GEMM) reference in the same run, the certified sparse matching against the dense one (same
pairs?), and the share of students matched. Wall-clock on whatever this machine is doing (the
1-minute load average is recorded); the numbers are informative, not a test.

    python bench/matchmaker.py --timing-only   # re-time, keeping the regret section
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path and its name would shadow the
# `matchmaker` package: drop that folder before importing the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import (  # noqa: E402
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table  # noqa: E402
from scipy import stats  # noqa: E402

from matchmaker.context import (  # noqa: E402
    FeatureTable,
    build_contexts,
    iter_arm_blocks,
)
from matchmaker.kernels import ucb_matrix  # noqa: E402
from matchmaker.matching import DENSE_MAX, match  # noqa: E402
from matchmaker.policies import LinUCBPolicy, PolicyParams, make_policy, rng_for_round  # noqa: E402
from sim.synthetic import Federation, SimConfig, run_simulation  # noqa: E402

RESULTS = _HERE / "results"
POLICIES = ("linucb", "heuristic", "random")


def _ci95(values: np.ndarray) -> np.ndarray:
    """Half-width of the 95% Student-t interval of the mean, along axis 0."""
    n = values.shape[0]
    if n < 2:
        return np.zeros(values.shape[1:])
    sem = values.std(axis=0, ddof=1) / np.sqrt(n)
    return np.asarray(sem * stats.t.ppf(0.975, n - 1))


def run_regret(ns: Sequence[int], rounds: int, seeds: Sequence[int], progress: Progress) -> dict[str, Any]:
    out: dict[str, Any] = {}
    total = len(ns) * len(seeds) * len(POLICIES) * rounds
    task = progress.add_task("regret", total=total)
    for n in ns:
        per_policy: dict[str, Any] = {}
        for name in POLICIES:
            params = PolicyParams(name=name)  # type: ignore[arg-type]
            curves, oracle_values, seconds = [], [], []
            for seed in seeds:
                progress.update(task, description=f"regret N={n} {name} seed={seed}")
                t0 = time.perf_counter()
                res = run_simulation(
                    params,
                    SimConfig(n_orgs=n, rounds=rounds, seed=seed),
                    on_round=lambda _r: progress.advance(task),
                )
                seconds.append(time.perf_counter() - t0)
                curves.append(res.cumulative_regret)
                oracle_values.append(float(np.mean(res.oracle_value)))
            cum = np.stack(curves)
            mean, ci = cum.mean(axis=0), _ci95(cum)
            per_policy[name] = {
                "params_digest": params.digest(),
                "final_cumulative_regret_mean": float(mean[-1]),
                "final_cumulative_regret_ci95": float(ci[-1]),
                "final_cumulative_regret_per_seed": [float(c[-1]) for c in cum],
                "regret_per_round_last_20_mean": float(np.mean(np.diff(cum, axis=1, prepend=0.0)[:, -20:])),
                "cumulative_regret_mean": mean.tolist(),
                "cumulative_regret_ci95": ci.tolist(),
                "seconds_per_run_mean": statistics.fmean(seconds),
            }
        per_policy["oracle_value_per_round_mean"] = statistics.fmean(oracle_values)
        out[str(n)] = per_policy
    return out


def _time(fn: Any, repeats: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def blas_reference_ucb(table: FeatureTable, theta: np.ndarray, linv: np.ndarray, beta: float) -> np.ndarray:
    """UCB by BLAS (GEMM per block of teachers): the speed reference; its bits are not the contract."""
    n = table.n
    out = np.empty((n, n))
    for t_blk, s_blk in iter_arm_blocks(n, max_arms=1 << 18):
        x = build_contexts(table, t_blk, s_blk)
        z = x @ linv.T
        out[t_blk, s_blk] = x @ theta + beta * np.sqrt(np.einsum("ij,ij->i", z, z))
    np.fill_diagonal(out, -np.inf)
    return out


def one_round(n: int, dense_max_n: int, blas_max_n: int) -> dict[str, Any]:
    """One decision round at ``n`` organizations, measured in this (fresh) process."""
    fed = Federation(SimConfig(n_orgs=n, seed=0))
    ids, feats = fed.active_ids(), fed.features()
    policy = make_policy(PolicyParams())
    assert isinstance(policy, LinUCBPolicy)
    # a few rounds of learning on a sub-federation so that the bandit is not at its prior
    sub = ids[: min(n, 64)]
    for r in range(3):
        d = policy.select(r, sub, feats, rng_for_round(0, r))
        policy.observe(d, fed.report(r, d.org_ids, d.pairs))
    warm = policy.select(3, ids[: min(n, 200)], feats, rng_for_round(0, 3))  # loads the kernels
    del warm, d
    rss_before = _rss_mib()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    decision = policy.select(10, ids, feats, rng_for_round(0, 10))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    row: dict[str, Any] = {
        "n": n,
        "pairs": n * (n - 1),
        "select_s": wall,
        "select_cpu_s": cpu,
        "peak_rss_mib": _rss_mib(),
        "rss_before_select_mib": rss_before,
        "matched_share": len(decision.pairs) / n,
        "method": "dense" if n <= DENSE_MAX else "certified",
    }
    table, scores = decision.table, decision.score_mat
    theta, linv, beta = policy.bandit.scoring_factors()
    t_kernel, _ = _time(lambda: ucb_matrix(table, theta, linv, beta, out=np.empty_like(scores)), 1)
    row["ucb_kernel_s"] = t_kernel
    t_pruned, pruned = _time(lambda: match(scores, method="certified"), 1)
    row["match_pruned_s"] = t_pruned
    if n <= dense_max_n:
        t_dense, dense = _time(lambda: match(scores, method="dense"), 1)
        row.update(match_dense_s=t_dense, pruned_equals_dense=pruned.pairs() == dense.pairs())
    del decision
    if n <= blas_max_n:
        t_blas, ref = _time(lambda: blas_reference_ucb(table, theta, linv, beta), 1)
        off = np.isfinite(ref)
        row.update(ucb_blas_s=t_blas, blas_max_abs_diff=float(np.abs(ref[off] - scores[off]).max()))
    row["loadavg_1min"] = os.getloadavg()[0]
    return row


def run_timing(
    ns: Sequence[int], dense_max_n: int, blas_max_n: int, progress: Progress
) -> list[dict[str, Any]]:
    """Each N in a fresh process, so that its peak memory is its own."""
    task = progress.add_task("timing", total=len(ns))
    rows = []
    for n in ns:
        progress.update(task, description=f"timing N={n}")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one-round", str(n)]
        cmd += ["--dense-max-n", str(dense_max_n), "--blas-max-n", str(blas_max_n)]
        proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        progress.advance(task)
    return rows


def plot(results: dict[str, Any], out: Path, console: Console) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        console.print("[yellow]matplotlib is not installed: no plots[/yellow]")
        return []
    written = []
    regret = results["regret"]
    fig, axes = plt.subplots(1, len(regret), figsize=(5 * len(regret), 4), squeeze=False)
    for ax, (n, per_policy) in zip(axes[0], regret.items(), strict=True):
        for name in POLICIES:
            mean = np.array(per_policy[name]["cumulative_regret_mean"])
            ci = np.array(per_policy[name]["cumulative_regret_ci95"])
            x = np.arange(1, len(mean) + 1)
            ax.plot(x, mean, label=name)
            ax.fill_between(x, mean - ci, mean + ci, alpha=0.25)
        ax.set_title(f"N = {n} organizations")
        ax.set_xlabel("round")
        ax.set_ylabel("cumulative regret vs oracle (sum of Pass@1 gains)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = out / "matchmaker_regret.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(str(path))

    timing = results["timing"]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ns = [r["n"] for r in timing]
    ax.plot(
        ns, [r["select_s"] for r in timing], "ko-", label="knexa Policy.select (contexts + UCB + matching)"
    )
    ax.plot(ns, [r["ucb_kernel_s"] for r in timing], "o-", label="UCB, compiled kernel (bit-exact)")
    blas = [r for r in timing if "ucb_blas_s" in r]
    if blas:
        ax.plot([r["n"] for r in blas], [r["ucb_blas_s"] for r in blas], "x--", label="UCB, BLAS reference")
    ax.plot(ns, [r["match_pruned_s"] for r in timing], "d-", label="matching, certified sparse (exact)")
    dense = [r for r in timing if "match_dense_s" in r]
    if dense:
        ax.plot([r["n"] for r in dense], [r["match_dense_s"] for r in dense], "s--", label="matching, dense")
    ax.axhline(10.0, color="red", lw=0.8, ls=":", label="10 s target at N = 10,000")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("organizations N (N(N-1) directed pairs)")
    ax.set_ylabel("seconds per round")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "matchmaker_timing.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(str(path))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke version: tiny N, few rounds and seeds")
    ap.add_argument("--out", type=Path, default=RESULTS, help="output folder (default bench/results)")
    ap.add_argument("--rounds", type=int, help="rounds per run (default 200; quick 10)")
    ap.add_argument("--seeds", type=int, help="number of seeds (default 5; quick 2)")
    ap.add_argument("--sizes", type=int, nargs="+", help="N for the regret runs (default 8 32 128)")
    ap.add_argument(
        "--timing-sizes", type=int, nargs="+", help="N for timing (default 250 500 1000 2000 5000 10000)"
    )
    ap.add_argument("--dense-max-n", type=int, default=2000, help="largest N timed with the dense assignment")
    ap.add_argument("--blas-max-n", type=int, default=10000, help="largest N timed with the BLAS reference")
    ap.add_argument("--timing-only", action="store_true", help="keep the regret section of an existing JSON")
    ap.add_argument("--one-round", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one_round:
        print(json.dumps(one_round(args.one_round, args.dense_max_n, args.blas_max_n)))
        return 0
    rounds = args.rounds or (10 if args.quick else 200)
    n_seeds = args.seeds or (2 if args.quick else 5)
    sizes = args.sizes or ([8] if args.quick else [8, 32, 128])
    timing_sizes = args.timing_sizes or ([10, 50] if args.quick else [250, 500, 1000, 2000, 5000, 10000])
    console = Console(stderr=True)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        previous = args.out / "matchmaker.json"
        if args.timing_only and previous.exists():
            regret = json.loads(previous.read_text())["regret"]
        else:
            regret = run_regret(sizes, rounds, list(range(n_seeds)), progress)
        timing = run_timing(timing_sizes, args.dense_max_n, args.blas_max_n, progress)
    results: dict[str, Any] = {
        "benchmark": "matchmaker",
        "quick": args.quick,
        "rounds": rounds,
        "seeds": list(range(n_seeds)),
        "policies": list(POLICIES),
        "default_params": PolicyParams().to_dict(),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "numpy": np.__version__,
            "cpus": os.cpu_count(),
        },
        "wall_s": time.perf_counter() - t0,
        "regret": regret,
        "timing": timing,
    }
    path = args.out / "matchmaker.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    plots = plot(results, args.out, console)

    out = Console()
    table = Table(title=f"cumulative regret after {rounds} rounds (mean ± 95% CI over {n_seeds} seeds)")
    table.add_column("N")
    for name in POLICIES:
        table.add_column(name, justify="right")
    table.add_column("oracle value/round", justify="right")
    for n, per in regret.items():
        table.add_row(
            n,
            *(
                f"{per[p]['final_cumulative_regret_mean']:.2f} ± {per[p]['final_cumulative_regret_ci95']:.2f}"
                for p in POLICIES
            ),
            f"{per['oracle_value_per_round_mean']:.3f}",
        )
    out.print(table)
    tt = Table(title="one decision round (Policy.select), seconds; peak memory of the process")
    for col in ("N", "select", "cpu", "UCB kernel", "UCB BLAS", "match pruned", "match dense", "peak MiB"):
        tt.add_column(col, justify="right")
    tt.add_column("matched", justify="right")
    for r in timing:
        tt.add_row(
            str(r["n"]),
            f"{r['select_s']:.3f}",
            f"{r['select_cpu_s']:.3f}",
            f"{r['ucb_kernel_s']:.3f}",
            f"{r.get('ucb_blas_s', float('nan')):.3f}",
            f"{r['match_pruned_s']:.3f}",
            f"{r.get('match_dense_s', float('nan')):.3f}",
            f"{r['peak_rss_mib']:.0f}",
            f"{r['matched_share']:.0%}",
        )
    out.print(tt)
    out.print(f"wrote {path}" + "".join(f", {p}" for p in plots))
    return 0


if __name__ == "__main__":
    sys.exit(main())
