"""The federation experiment: local-only, random / heuristic / knexa (LinUCB) P2P, central-kd.

Equal compute per method (a distillation step replaces a local step), every method of a seed
starts from the same warmed-up agents. Run the full benchmark (6 organisations of the tiny zoo,
20 rounds, 5 seeds; about an hour on a 2-core CPU) with
``.venv/bin/python bench/federation.py --jobs 2``, or ``--tiny`` for a seconds-scale smoke run.
Writes ``bench/results/federation.json``, ``federation.png`` (test Pass@1 per round with 95% CIs,
per-organisation finals) and ``federation-pairs.png`` (the pairing graph LinUCB converged to).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import platform
import queue
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # runnable as a plain script
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from agent.models.tokenizer import Codec  # noqa: E402
from agent.sandbox import Evaluator, isolation_level  # noqa: E402
from agent.world import ExperimentConfig, build_world, tiny_config  # noqa: E402
from sim.experiment import CENTRAL_KD, PAIRINGS, Method, run_seed, summarise  # noqa: E402
from sim.matchmaking import PolicyPairing  # noqa: E402

NO_PAIRS = ("local-only", "central-kd")  # methods without peer-to-peer pairs


def converged_pairs(per_seed: Sequence[dict[str, Any]], method: str, last: int = 5) -> list[dict[str, Any]]:
    """Per seed: how often each directed (teacher, student) pair was chosen in the last rounds."""
    out = []
    for seed_result in per_seed:
        records = seed_result["methods"][method][-last:]
        counts = Counter((t, s) for rec in records for t, s in rec["pairs"])
        out.append(
            {
                "rounds": [rec["round"] for rec in records],
                "pairs": [{"teacher": t, "student": s, "count": n} for (t, s), n in sorted(counts.items())],
            }
        )
    return out


def plot_all(result: dict[str, Any], out: Path) -> None:
    """federation.png (curves, per-organisation finals) and federation-pairs.png (LinUCB's graphs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary, per_seed = result["summary"], result["per_seed"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
    for method, curve in summary["curve"].items():
        xs = [c["round"] for c in curve]
        ms = [c["mean"] for c in curve]
        cis = [c["ci95"] for c in curve]
        ax1.plot(xs, ms, marker="o", label=method)
        ax1.fill_between(
            xs,
            [m - c for m, c in zip(ms, cis, strict=True)],
            [m + c for m, c in zip(ms, cis, strict=True)],
            alpha=0.15,
        )
    ax1.set_xlabel("round (0 = after local warm-up)")
    ax1.set_ylabel(f"mean test Pass@1 (95% CI over {len(per_seed)} seeds)")
    ax1.legend()
    methods = list(summary["final"])
    orgs = sorted(per_seed[0]["start"])
    width = 0.8 / len(methods)
    for j, method in enumerate(methods):
        vals = [sum(s["methods"][method][-1]["test"][o] for s in per_seed) / len(per_seed) for o in orgs]
        ax2.bar([i + j * width for i in range(len(orgs))], vals, width, label=method)
    ax2.set_xticks([i + 0.4 - width / 2 for i in range(len(orgs))], orgs)
    ax2.set_ylabel("final test Pass@1 per organisation (mean over seeds)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "federation.png", dpi=110)
    plt.close(fig)

    graphs = result.get("converged_pairs", {}).get("knexa")
    if not graphs:
        return
    fig, axes = plt.subplots(1, len(graphs), figsize=(3.4 * len(graphs), 3.8), squeeze=False)
    for ax, graph, seed_result in zip(axes[0], graphs, per_seed, strict=True):
        names = sorted(seed_result["start"])
        angle = {n: 2 * math.pi * i / len(names) for i, n in enumerate(names)}
        pos = {n: (math.cos(a), math.sin(a)) for n, a in angle.items()}
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
            mix = seed_result["mixes"][n]
            top = max(mix, key=mix.get)
            family = seed_result["families"][n].split("-")[0]
            ax.text(
                *pos[n],
                f"{n}\n{family}\n{top}",
                ha="center",
                va="center",
                fontsize=7,
                bbox={"boxstyle": "round", "fc": "white", "ec": "grey"},
            )
        ax.set_xlim(-1.4, 1.4)
        ax.set_ylim(-1.4, 1.4)
        ax.set_axis_off()
        ax.set_title(
            f"seed {seed_result.get('seed', '?')}: rounds {graph['rounds'][0]}-{graph['rounds'][-1]}",
            fontsize=9,
        )
    fig.suptitle("knexa (LinUCB): teacher -> student pairs chosen in the last rounds (width = how often)")
    fig.tight_layout()
    fig.savefig(out / "federation-pairs.png", dpi=110)
    plt.close(fig)


def print_summary(result: dict[str, Any]) -> None:
    summary = result["summary"]
    cfg = result["config"]
    table = Table(title=f"final mean test Pass@1 over {len(cfg['seeds'])} seed(s), {cfg['rounds']} rounds")
    for col in (
        "method",
        "balanced test",
        "own-mix test",
        "vs local-only",
        "ratio to random",
        "reported gain",
    ):
        table.add_column(col)
    for m, s in summary["final"].items():
        own = summary["final_own_mix"][m]
        d = summary.get("vs_local", {}).get(m)
        r = summary.get("ratio_vs_random", {}).get(m)
        g = summary.get("reported_gain", {}).get(m)
        table.add_row(
            m,
            f"{s['mean']:.3f} ±{s['ci95']:.3f}",
            f"{own['mean']:.3f} ±{own['ci95']:.3f}",
            "" if d is None else f"{d['mean']:+.3f} ±{d['ci95']:.3f}",
            "" if r is None else f"{r['mean']:.2f} [{r['low']:.2f}, {r['high']:.2f}]",
            "" if g is None else f"{g['mean']:+.3f} ±{g['ci95']:.3f}",
        )
    Console().print(table)


def progress_bars(console: Console) -> Progress:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=console)


def pretrain_with_progress(progress: Progress, cfg: ExperimentConfig) -> tuple[Codec, dict[str, Any]]:
    """The shared tokenizer and base models, one bar per model (full at once on a cache hit)."""
    bars = {
        s.name: progress.add_task(f"pretrain {s.name} (cached after first run)", total=cfg.pretrain.steps)
        for s in cfg.specs()
    }
    codec, bases = build_world(cfg, lambda name, n: progress.advance(bars[name], n))
    for bar in bars.values():
        progress.update(bar, completed=cfg.pretrain.steps)
    return codec, bases


def run_inline(
    cfg: ExperimentConfig, names: Sequence[str], threads: int, verbose: bool, console: Console
) -> list[dict[str, Any]]:
    """Every seed in this process (what tests and ``--jobs 1`` use)."""
    torch.set_num_threads(threads)
    evaluator = Evaluator(workers=cfg.workers)
    with progress_bars(console) as progress:
        codec, bases = pretrain_with_progress(progress, cfg)
        rounds = progress.add_task("federation rounds", total=len(cfg.seeds) * len(names) * cfg.rounds)
        return [
            run_seed(
                cfg,
                seed,
                make_methods(names),
                codec,
                bases,
                evaluator,
                lambda _w, n: progress.advance(rounds, n),
                progress.console.log if verbose else None,
            )
            for seed in cfg.seeds
        ]


METHOD_NAMES = ("local-only", "random", "heuristic", "central-kd", "knexa")


def make_methods(names: Sequence[str]) -> dict[str, Method]:
    """Fresh method objects (the policy pairings are stateful, one set per process)."""
    table: dict[str, Callable[[], Method]] = {
        "local-only": lambda: None,
        "random": lambda: PAIRINGS["random"],
        "round-robin": lambda: PAIRINGS["round-robin"],
        "heuristic": lambda: PolicyPairing("heuristic"),
        "central-kd": lambda: CENTRAL_KD,
        "knexa": lambda: PolicyPairing("linucb"),
    }
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; choose from {sorted(table)}")
    return {n: table[n]() for n in names}


def _run_one_seed(
    cfg: ExperimentConfig, seed: int, names: Sequence[str], threads: int, events: Any, verbose: bool
) -> dict[str, Any]:
    """One seed in a worker process; round ticks and log lines go back through ``events``."""
    torch.set_num_threads(threads)
    codec, bases = build_world(cfg)
    return run_seed(
        cfg,
        seed,
        make_methods(names),
        codec,
        bases,
        Evaluator(workers=cfg.workers),
        lambda _what, n: events.put(("tick", n)),
        (lambda line: events.put(("log", line))) if verbose else None,
    )


def run_all(
    cfg: ExperimentConfig, names: Sequence[str], jobs: int, threads: int, verbose: bool, console: Console
) -> list[dict[str, Any]]:
    """Every seed, ``jobs`` at a time in separate processes, with one progress bar over all rounds."""
    with progress_bars(console) as progress:
        pretrain_with_progress(progress, cfg)  # fills the cache once, before the workers load it
        rounds = progress.add_task("federation rounds", total=len(cfg.seeds) * len(names) * cfg.rounds)
        context = multiprocessing.get_context("spawn")
        with context.Manager() as manager, ProcessPoolExecutor(jobs, mp_context=context) as pool:
            events = manager.Queue()
            futures = [
                pool.submit(_run_one_seed, cfg, seed, names, threads, events, verbose) for seed in cfg.seeds
            ]
            while not all(f.done() for f in futures):
                try:
                    kind, value = events.get(timeout=0.5)
                except queue.Empty:
                    continue
                if kind == "tick":
                    progress.advance(rounds, value)
                else:
                    progress.console.log(value)
            return [f.result() for f in futures]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="seconds-scale smoke configuration")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds (default 5; 1 with --tiny)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--orgs", type=int, default=None)
    ap.add_argument("--methods", default=",".join(METHOD_NAMES), help="comma-separated methods to run")
    ap.add_argument("--val", type=int, default=None, help="validation problems per organization (default 16)")
    ap.add_argument("--jobs", type=int, default=1, help="seeds run in parallel processes")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--plot-only", action="store_true", help="redraw the plots from an existing JSON")
    ap.add_argument("--verbose", action="store_true", help="log every round's numbers")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads per job (results do not depend on it)"
    )
    args = ap.parse_args(argv)
    console = Console(stderr=True)
    if args.plot_only:
        result = json.loads((args.out / "federation.json").read_text())
        plot_all(result, args.out)
        print_summary(result)
        return 0
    cfg = tiny_config() if args.tiny else ExperimentConfig()
    if args.seeds is not None:
        cfg = replace(cfg, seeds=tuple(range(args.seeds)))
    if args.rounds is not None:
        cfg = replace(cfg, rounds=args.rounds)
    if args.orgs is not None:
        cfg = replace(cfg, n_orgs=args.orgs)
    if args.val is not None:
        cfg = replace(cfg, val_per_org=args.val)
    names = [n for n in args.methods.split(",") if n]
    make_methods(names)  # refuse unknown names before any work
    t0 = time.time()
    if args.jobs > 1:
        per_seed = run_all(cfg, names, args.jobs, args.threads, args.verbose, console)
    else:
        per_seed = run_inline(cfg, names, args.threads, args.verbose, console)
    summary = summarise(per_seed, cfg.rounds)
    result = {
        "config": asdict(cfg),
        "methods": names,
        "summary": summary,
        "converged_pairs": {m: converged_pairs(per_seed, m) for m in names if m not in NO_PAIRS},
        "per_seed": per_seed,
        "seconds": time.time() - t0,
        "jobs": args.jobs,
        "sandbox_isolation": isolation_level(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "federation.json").write_text(json.dumps(result, indent=2, default=str))
    plot_all(result, args.out)
    print_summary(result)
    console.print(f"wrote {args.out / 'federation.json'} in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
