"""`knexa agent ...`: commands of the learning core (model zoo, evaluation), mounted by the top CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agent.data.splits import build_suite, check_disjoint, split_rows
from agent.data.templates import CATEGORIES
from clikit import ExitCode, fail, json_option

if TYPE_CHECKING:
    from agent.data.problems import Problem
    from agent.sandbox import Evaluator

app = typer.Typer(help="knexa agent: data suite, model zoo, Pass@1 evaluation.", no_args_is_help=True)
_out = Console()
_SHORT = {
    "strings": "str",
    "arithmetic": "arith",
    "conditionals": "cond",
    "recursion": "rec",
    "sorting": "sort",
}
_err = Console(stderr=True)


def _emit(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


@app.command("data-table")
def data_table(
    orgs: int = typer.Option(6, min=1, max=64, help="number of organisations"),
    alpha: float = typer.Option(0.1, min=1e-3, help="Dirichlet concentration (small = specialists)"),
    seed: int = typer.Option(0, help="data seed"),
    train: int = typer.Option(160, min=1, help="private training problems per organisation"),
    val: int = typer.Option(24, min=1, help="private validation problems per organisation"),
    json_output: bool = json_option(),
) -> None:
    """Print the non-IID split: each organisation's problem counts per category."""
    try:
        suite = build_suite(n_orgs=orgs, alpha=alpha, seed=seed, train_per_org=train, val_per_org=val)
    except ValueError as exc:
        fail(exc, code=ExitCode.USAGE)
    check_disjoint(suite)
    rows = split_rows(suite)
    sizes = {"transfer": len(suite.transfer), "test": len(suite.test), "test_novel": len(suite.test_novel)}
    if json_output:
        _emit({"seed": seed, "alpha": alpha, "orgs": rows, "shared": sizes})
        return
    table = Table(title=f"non-IID split: Dirichlet(alpha={alpha}), seed {seed}")
    table.add_column("org")
    for c in CATEGORIES:
        table.add_column(_SHORT.get(c, c), justify="right")
    table.add_column("train/val", justify="right", no_wrap=True)
    for r in rows:
        counts: dict[str, int] = r["counts"]  # type: ignore[assignment]
        table.add_row(str(r["org"]), *[str(counts[c]) or "" for c in CATEGORIES], f"{r['train']}/{r['val']}")
    _out.print(table)
    _out.print(
        f"shared: transfer {sizes['transfer']} prompts (public), test {sizes['test']} "
        f"(balanced), test_novel {sizes['test_novel']} (held-out templates); all splits disjoint"
    )


@app.command("build-zoo")
def build_zoo(
    scale: str = typer.Option(
        "tiny", help="tiny (the benchmark's and the demo's models), small (the -s zoo) or smoke (CI)"
    ),
    steps: int = typer.Option(0, min=0, help="pretraining steps (0 = the experiment default)"),
    threads: int = typer.Option(1, min=1, max=64, help="torch threads"),
    json_output: bool = json_option(),
) -> None:
    """Train the shared tokenizer and pretrain (or load from cache) every base model of the zoo."""
    import torch

    from agent.models.zoo import n_params
    from agent.world import build_world, config_for_scale

    torch.set_num_threads(threads)
    try:
        cfg = config_for_scale(scale)
    except ValueError as exc:
        fail(exc, code=ExitCode.USAGE)
    if steps:
        cfg = replace(cfg, pretrain=replace(cfg.pretrain, steps=steps))
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=_err, disable=json_output) as progress:
        tasks = {
            s.name: progress.add_task(f"pretrain {s.name}", total=cfg.pretrain.steps) for s in cfg.specs()
        }
        codec, bases = build_world(cfg, lambda name, n: progress.advance(tasks[name], n))
    rows = [
        {
            "name": s.name,
            "family": s.family,
            "params": n_params(bases[s.name]),
            "lora_rank": s.lora_rank,
            **{k: v for k, v in asdict(s).items() if k in ("hidden", "layers", "heads")},
        }
        for s in cfg.specs()
    ]
    if json_output:
        _emit({"tokenizer": codec.identity, "vocab_size": codec.vocab_size, "models": rows})
        return
    table = Table(title=f"model zoo (tokenizer {codec.identity}, vocab {codec.vocab_size})")
    for col in ("name", "family", "params", "hidden", "layers", "heads", "lora_rank"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            *(str(r[c]) for c in ("name", "family", "params", "hidden", "layers", "heads", "lora_rank"))
        )
    _out.print(table)


@app.command("evaluate")
def evaluate(
    split: str = typer.Option("test", help="test | test_novel | humaneval-canonical"),
    model: str = typer.Option("reference", help="'reference' (the reference solutions) or a zoo model name"),
    seed: int = typer.Option(0, help="data seed"),
    workers: int = typer.Option(2, min=1, max=32, help="sandbox worker processes"),
    unsafe_sandbox: bool = typer.Option(
        False,
        "--unsafe-sandbox",
        help="run programs without isolation where the sandbox cannot be built (they can read your files)",
    ),
    json_output: bool = json_option(),
) -> None:
    """Pass@1 in the sandbox: of the reference solutions (a self-check) or of a pretrained base model."""
    from agent.sandbox import Evaluator, Isolation, SandboxError, isolation_level

    level = isolation_level()
    if level is Isolation.UNSAFE:
        if not unsafe_sandbox:
            fail(
                "the sandbox cannot isolate programs on this machine (bubblewrap cannot create "
                "namespaces); --unsafe-sandbox runs them without isolation"
            )
        _err.print(
            "[yellow]warning:[/yellow] --unsafe-sandbox: generated programs run WITHOUT isolation; "
            "they can read your files and environment and reach the network"
        )
    evaluator = Evaluator(workers=workers, unsafe=unsafe_sandbox)
    problems: list[Problem]
    if split == "humaneval-canonical":
        from agent.models.real import MissingPackageError, load_humaneval

        try:
            problems = load_humaneval()
        except MissingPackageError as exc:
            fail(exc, code=ExitCode.USAGE)
    elif split in ("test", "test_novel"):
        suite = build_suite(seed=seed)
        problems = list(suite.test if split == "test" else suite.test_novel)
    else:
        fail(f"unknown split {split!r}", code=ExitCode.USAGE)
    try:
        passed = _evaluate(evaluator, problems, model)
    except SandboxError as exc:
        fail(exc)
    by_cat: dict[str, list[bool]] = {}
    for p, ok in zip(problems, passed, strict=True):
        by_cat.setdefault(p.category, []).append(ok)
    summary = {
        "split": split,
        "model": model,
        "isolation": str(level),
        "pass_at_1": sum(passed) / len(passed) if passed else 0.0,
        "n": len(passed),
        "by_category": {c: sum(v) / len(v) for c, v in sorted(by_cat.items())},
    }
    if json_output:
        _emit(summary)
        return
    _out.print(
        f"Pass@1 of {model} on {split}: {summary['pass_at_1']:.3f} over {len(passed)} problems "
        f"(sandbox isolation: {summary['isolation']})"
    )
    for c, v in summary["by_category"].items():  # type: ignore[attr-defined]
        _out.print(f"  {c:14s} {v:.3f}")


def _evaluate(evaluator: Evaluator, problems: Sequence[Problem], model: str) -> list[bool]:
    """The pass/fail of each problem for the reference solutions or a zoo model's completions."""
    if model == "reference":
        results = evaluator.run_many([p.program(p.solution) for p in problems])
        return [r.passed for r in results]
    from agent.evaluate import pass_at_1
    from agent.world import build_world, config_for_scale

    scales = {spec: scale for scale in ("tiny", "small") for spec in config_for_scale(scale).families}
    if model not in scales:
        fail(f"unknown model {model!r}; choose from {sorted(scales)}", code=ExitCode.USAGE)
    cfg = replace(config_for_scale(scales[model]), families=(model,))
    codec, bases = build_world(cfg)
    return list(pass_at_1(bases[model], codec, problems, evaluator).passed)
