"""The README's federation results, rendered from what `bench/federation.py` merged.

Reads ``bench/results/federation.json`` (heterogeneous world) and ``federation-control.json`` and
prints Markdown: the comparison table of each world, knexa / random, the pre-registered targets
beside what was measured, how often knexa paired students, and who gains by organization size.
With ``--readme`` it rewrites the block between the README's ``federation-results`` markers, so
the numbers there are always the merged files' (the reading around them is written by hand).

Run: ``.venv/bin/python bench/federation.py --merge-only`` (and ``--world control``), then
``.venv/bin/python bench/federation_report.py --readme``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- federation-results:begin (bench/federation_report.py --readme) -->"
END = "<!-- federation-results:end -->"
SIZE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("small (< 100 problems)", 0, 100),
    ("mid (100-299)", 100, 300),
    ("large (>= 300)", 300, 10**9),
)


def _ci(entry: Mapping[str, float] | None, digits: int = 3) -> str:
    if entry is None:
        return ""
    return f"{entry['mean']:+.{digits}f} ± {entry['ci95']:.{digits}f} ({int(entry['n'])})"


def _share(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.2f}"


def comparison_table(summary: Mapping[str, Any]) -> list[str]:
    """One row per method: its own figures over its seeds, paired differences over shared seeds."""
    share = summary.get("share_of_oracle_gain", {})
    reward_share = summary.get("share_of_oracle_reward_gain", {})
    lines = [
        "| method | seeds | own-test Pass@1 (primary) | balanced test (secondary) | mean Eq. 3 reward (nats) "
        "| minus random (paired, seeds) | minus local-only (paired, seeds) | share of oracle's gain: "
        "primary / reward |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in summary["methods"]:
        p, g, r = summary["primary"][m], summary["secondary"][m], summary["mean_reward"][m]
        paired = summary["primary_paired"]
        lines.append(
            f"| {m} | {int(p['n'])} | {p['mean']:.3f} ± {p['ci95']:.3f} | {g['mean']:.3f} ± {g['ci95']:.3f} "
            f"| {r['mean']:+.4f} | {_ci(paired.get(f'{m} - random'))} "
            f"| {_ci(paired.get(f'{m} - local-only'))} "
            f"| {'' if m not in share else f'{_share(share[m])} / {_share(reward_share[m])}'} |"
        )
    return lines


def ratio_line(summary: Mapping[str, Any]) -> str:
    k = summary.get("knexa_over_random")
    if k is None:
        return "knexa / random: not measured."
    return (
        f"knexa / random on the primary metric: **{k['mean']:.2f} [{k['low']:.2f}, {k['high']:.2f}]** "
        f"(ratio of means, 95% paired bootstrap over {int(k['n'])} seeds)."
    )


def targets_table(summary: Mapping[str, Any]) -> list[str]:
    """The issue's targets beside what this run measured (met or not, never adjusted)."""
    paired = summary["primary_paired"]
    rows: list[tuple[str, str, bool | None]] = []
    k = summary.get("knexa_over_random")
    if k is not None:
        rows.append(
            (
                "knexa / random >= 1.5, 95% lower bound > 1.25",
                f"{k['mean']:.2f} [{k['low']:.2f}, {k['high']:.2f}]",
                k["mean"] >= 1.5 and k["low"] > 1.25,
            )
        )
    for m in ("random", "knexa"):
        d = paired.get(f"{m} - local-only")
        if d is not None:
            rows.append(
                (
                    f"{m} above local-only",
                    f"{d['mean']:+.3f} ± {d['ci95']:.3f}",
                    d["mean"] - d["ci95"] > 0,
                )
            )
    d = paired.get("central-kd - random")
    if d is not None:
        rows.append(
            (
                "central-kd collapses or lags (below random)",
                f"{d['mean']:+.3f} ± {d['ci95']:.3f}",
                d["mean"] < 0,
            )
        )
    for key, what in (("share_of_oracle_gain", "primary"), ("share_of_oracle_reward_gain", "Eq. 3 reward")):
        share = summary.get(key, {})
        if "knexa" not in share:
            continue
        seeds = summary[f"{key}_seeds"]["knexa"]
        gap = summary[f"{key}_oracle_gap"]["knexa"]
        value = share["knexa"]
        measured = (
            f"undefined: the oracle's gain over local-only is {gap:+.4f}"
            if value is None
            else f"{value:.2f} (oracle's gain {gap:+.4f})"
        )
        rows.append(
            (
                f"knexa realises >= 70% of the oracle's gain ({what})",
                f"{measured}, {len(seeds)} seeds",
                value is not None and value >= 0.7,
            )
        )
    lines = ["| target | measured | met |", "| --- | ---: | :---: |"]
    lines += [f"| {t} | {v} | {'yes' if ok else 'no'} |" for t, v, ok in rows]
    return lines


def pairing_rates(per_seed: Mapping[str, Sequence[int]], last: int = 5) -> tuple[list[float], list[float]]:
    """Per seed, the mean number of students paired per round: over the run and at its end."""
    counts = list(per_seed.values())
    return [statistics.fmean(c) for c in counts], [statistics.fmean(c[-last:]) for c in counts]


def size_bands(finals: Sequence[Mapping[str, Any]], methods: Sequence[str]) -> list[str]:
    """Mean final own-test Pass@1 minus local-only's, by the organization's training-set size."""
    head = "| organizations | " + " | ".join(m for m in methods if m != "local-only") + " |"
    lines = [head, "| --- |" + " ---: |" * (len(methods) - 1)]
    for label, lo, hi in SIZE_BANDS:
        rows = [r for r in finals if lo <= r["train"] < hi and "local-only" in r["final"]]
        cells = []
        for m in methods:
            if m == "local-only":
                continue
            diffs = [r["final"][m] - r["final"]["local-only"] for r in rows if m in r["final"]]
            cells.append(f"{statistics.fmean(diffs):+.3f} ({len(diffs)})" if diffs else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def render(results: Path) -> str:
    hetero = json.loads((results / "federation.json").read_text())
    control = json.loads((results / "federation-control.json").read_text())
    hs, cs = hetero["summary"], control["summary"]
    out = ["Heterogeneous world (mean ± 95% t-interval over seeds; paired differences per seed, with the"]
    out += ["number of seeds both methods finished):", ""]
    out += [*comparison_table(hs), "", ratio_line(hs), ""]
    out += ["Targets (the issue's aims, beside what was measured):", "", *targets_table(hs), ""]
    knexa_paired = hetero.get("students_paired", {}).get("knexa", {})
    if knexa_paired:
        overall, tail = pairing_rates(knexa_paired)
        out += [
            f"knexa paired {', '.join(f'{v:.1f}' for v in overall)} of 6 students per round on average "
            f"(seeds {', '.join(knexa_paired)}), and "
            f"{', '.join(f'{v:.1f}' for v in tail)} in the last five rounds.",
            "",
        ]
    out += ["Final own-test Pass@1 minus local-only's, by organization size (organization-seeds):", ""]
    out += [*size_bands(hetero["per_org_finals"], hs["methods"]), ""]
    out += ["Control world, the old homogeneous one:", ""]
    out += [*comparison_table(cs), "", ratio_line(cs)]
    return "\n".join(out)


def rewrite_readme(readme: Path, block: str) -> None:
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{readme} has no federation-results markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{block}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--readme", action="store_true", help="rewrite the README's federation-results block")
    args = ap.parse_args(argv)
    block = render(args.results)
    if args.readme:
        rewrite_readme(ROOT / "README.md", block)
    print(block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
