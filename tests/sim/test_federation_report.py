"""The README's federation block is rendered from the merged results, and the targets are judged
from the numbers, never by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sim.federation import summarise
from tests.bench_scripts import load_bench


def _result(method: str, seed: int, own: float, pairs: int = 0) -> dict[str, Any]:
    rec = {
        "round": 1,
        "pairs": [["a", "b"]] * pairs,
        "rewards": {"a": 0.01, "b": 0.01},
        "own_test": {"a": own, "b": own},
        "global_test": {"a": own / 2, "b": own / 2},
    }
    start = {"own_test": {"a": 0.0, "b": 0.0}, "global_test": {"a": 0.0, "b": 0.0}}
    return {"method": method, "seed": seed, "start": start, "rounds": [rec]}


def _summary(knexa_lift: float) -> dict[str, Any]:
    results = []
    for seed, base in enumerate((0.20, 0.22, 0.18)):
        results += [
            _result("local-only", seed, base),
            _result("random", seed, base + 0.01),
            _result("central-kd", seed, base - 0.02),
            _result("knexa", seed, (base + 0.01) * knexa_lift),
            _result("oracle", seed, base + 0.2),
        ]
    return summarise(results)


def _verdicts(lines: list[str]) -> dict[str, str]:
    return {row.split("|")[1].strip(): row.split("|")[3].strip() for row in lines[2:]}


def test_targets_are_judged_from_the_numbers() -> None:
    report = load_bench("federation_report")
    weak = _verdicts(report.targets_table(_summary(1.1)))
    assert weak["knexa / random >= 1.5, 95% lower bound > 1.25"] == "no"
    assert weak["central-kd collapses or lags (below random)"] == "yes"
    assert weak["knexa realises >= 70% of the oracle's gain (primary)"] == "no"
    strong = _verdicts(report.targets_table(_summary(2.0)))
    assert strong["knexa / random >= 1.5, 95% lower bound > 1.25"] == "yes"
    assert strong["knexa above local-only"] == "yes"


def test_table_rows_carry_each_methods_number_of_seeds() -> None:
    report = load_bench("federation_report")
    results = [_result("local-only", s, 0.2) for s in range(3)] + [_result("random", 0, 0.3)]
    rows = report.comparison_table(summarise(results))
    by_method = {row.split("|")[1].strip(): row.split("|")[2].strip() for row in rows[2:]}
    assert by_method == {"local-only": "3", "random": "1"}
    assert "(1)" in rows[2]  # local-only minus random rests on the one seed both finished


def test_readme_block_is_replaced_between_markers_only(tmp_path: Path) -> None:
    report = load_bench("federation_report")
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{report.BEGIN}\nold numbers\n{report.END}\nafter\n")
    report.rewrite_readme(readme, "new numbers")
    assert readme.read_text() == f"before\n{report.BEGIN}\nnew numbers\n{report.END}\nafter\n"
    bare = tmp_path / "BARE.md"
    bare.write_text("no markers here\n")
    with pytest.raises(SystemExit, match="no federation-results markers"):
        report.rewrite_readme(bare, "x")
    assert bare.read_text() == "no markers here\n"


def test_render_reads_the_merged_files(tmp_path: Path) -> None:
    report = load_bench("federation_report")
    paired = load_bench("federation").students_paired([_result("knexa", 0, 0.2, pairs=2)], "knexa")
    for stem in ("federation", "federation-control"):
        merged = {"summary": _summary(1.0), "per_org_finals": [], "students_paired": {"knexa": paired}}
        (tmp_path / f"{stem}.json").write_text(json.dumps(merged))
    text = report.render(tmp_path)
    assert "knexa paired 2.0 of 6 students per round" in text
    assert text.count("| method | seeds |") == 2


def test_an_oracle_that_gains_nothing_leaves_the_share_undefined_and_the_target_unmet() -> None:
    report = load_bench("federation_report")
    results = []
    for seed, base in enumerate((0.20, 0.22)):
        results += [
            _result("local-only", seed, base),
            _result("knexa", seed, base + 0.05),
            _result("oracle", seed, base - 0.01),
        ]
    summary = summarise(results)
    rows = report.targets_table(summary)
    line = next(r for r in rows if "oracle's gain (primary)" in r)
    assert "undefined" in line
    assert line.rstrip().endswith("| no |")
    table = report.comparison_table(summary)
    assert any(r.startswith("| knexa |") and "undefined" in r for r in table)
