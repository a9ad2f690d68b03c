"""Federation experiment: local-only vs P2P distillation (random, round-robin pairing) at equal compute.

Run: ``.venv/bin/python bench/federation.py`` (defaults: 4 orgs, 3 families, 3 rounds, 3 seeds;
a few CPU-minutes once the zoo is cached) or ``--tiny`` for a seconds-scale smoke run.
Writes ``bench/results/federation.json`` and ``bench/results/federation.png``.
Pairing policies are plain callables (``agent.experiment.PairingFn``): the matchmaker's
LinUCB policy plugs in as another entry of ``methods``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
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

from agent.experiment import (  # noqa: E402
    PAIRINGS,
    ExperimentConfig,
    PairingFn,
    build_world,
    run_seed,
    summarise,
    tiny_config,
)
from agent.matchmaking import PolicyPairing  # noqa: E402
from agent.sandbox import Evaluator, isolation_level  # noqa: E402


def plot(summary: dict[str, Any], per_seed: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for method, curve in summary["curve"].items():
        xs = list(range(len(curve)))
        ms = [c["mean"] for c in curve]
        cis = [c["ci95"] for c in curve]
        ax1.plot(xs, ms, marker="o", label=method)
        ax1.fill_between(
            xs,
            [m - c for m, c in zip(ms, cis, strict=True)],
            [m + c for m, c in zip(ms, cis, strict=True)],
            alpha=0.2,
        )
    ax1.set_xticks(list(range(len(next(iter(summary["curve"].values()))))))
    ax1.set_xlabel("round (0 = after local warm-up)")
    ax1.set_ylabel("mean test Pass@1 (95% CI over seeds)")
    ax1.legend()
    methods = list(summary["final"])
    orgs = sorted(per_seed[0]["start"])
    width = 0.8 / len(methods)
    for j, method in enumerate(methods):
        vals = [sum(s["methods"][method][-1]["test"][o] for s in per_seed) / len(per_seed) for o in orgs]
        ax2.bar([i + j * width for i in range(len(orgs))], vals, width, label=method)
    ax2.set_xticks([i + 0.4 - width / 2 for i in range(len(orgs))], orgs)
    ax2.set_ylabel("final test Pass@1 (mean over seeds)")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tiny", action="store_true", help="seconds-scale smoke configuration")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds (default 3; 1 with --tiny)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--orgs", type=int, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--verbose", action="store_true", help="log every round's numbers")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (results do not depend on it)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = tiny_config() if args.tiny else ExperimentConfig()
    if args.seeds is not None:
        cfg = replace(cfg, seeds=tuple(range(args.seeds)))
    if args.rounds is not None:
        cfg = replace(cfg, rounds=args.rounds)
    if args.orgs is not None:
        cfg = replace(cfg, n_orgs=args.orgs)
    methods: dict[str, PairingFn | None] = {
        "local-only": None,
        **PAIRINGS,
        "heuristic": PolicyPairing("heuristic"),
        "knexa": PolicyPairing("linucb"),
    }
    console = Console(stderr=True)
    evaluator = Evaluator(workers=cfg.workers)
    t0 = time.time()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        specs = cfg.specs()
        pre = {
            s.name: progress.add_task(f"pretrain {s.name} (cached after first run)", total=cfg.pretrain.steps)
            for s in specs
        }
        codec, bases = build_world(cfg, lambda name, n: progress.advance(pre[name], n))
        for tid in pre.values():
            progress.update(tid, completed=cfg.pretrain.steps)
        rounds = progress.add_task("federation rounds", total=len(cfg.seeds) * len(methods) * cfg.rounds)
        per_seed = [
            run_seed(
                cfg,
                seed,
                methods,
                codec,
                bases,
                evaluator,
                lambda _w, n: progress.advance(rounds, n),
                progress.console.log if args.verbose else None,
            )
            for seed in cfg.seeds
        ]
    summary = summarise(per_seed, cfg.rounds)
    result = {
        "config": asdict(cfg),
        "methods": list(methods),
        "summary": summary,
        "per_seed": per_seed,
        "seconds": time.time() - t0,
        "sandbox_isolation": isolation_level(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "federation.json").write_text(json.dumps(result, indent=2, default=str))
    plot(summary, per_seed, args.out / "federation.png")
    table = Table(title=f"final mean test Pass@1 over {len(cfg.seeds)} seed(s), {cfg.rounds} rounds")
    for col in ("method", "mean", "95% CI", "vs local-only"):
        table.add_column(col)
    for m, s in summary["final"].items():
        d = summary.get("vs_local", {}).get(m)
        table.add_row(
            m,
            f"{s['mean']:.3f}",
            f"±{s['ci95']:.3f}",
            "" if d is None else f"{d['mean']:+.3f} ±{d['ci95']:.3f}",
        )
    Console().print(table)
    console.print(f"wrote {args.out / 'federation.json'} in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
