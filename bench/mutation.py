"""Mutation testing (mutmut) -> bench/results/mutation.json.

`make mutation` runs this with the modules and tests of its variables. mutmut works on a copy of
the repository under build/mutation (it rewrites the sources there, never here): every mutant of
the named modules is run against the named fast tests. Survivors are then matched against
bench/mutation_equivalent.json, where each mutant that no test can kill is argued equivalent
by name; the score counts only the others:

    score = killed / (mutants - equivalent)

A survivor without an argument there is reported as such (and fails the run with --check).

Run: `.venv/bin/python bench/mutation.py --modules exchange/cid.py exchange/unixfs.py
--tests tests/exchange/test_unixfs.py --max-children 2`; `--out` names another result file
(bench/results/mutation-matchmaker.json for the matchmaker's modules).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutation"
RESULTS = ROOT / "bench" / "results" / "mutation.json"
EQUIVALENT = ROOT / "bench" / "mutation_equivalent.json"
KILLED = {"killed", "timeout", "caught by type check", "segfault"}


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def prepare(modules: list[str], tests: list[str]) -> None:
    """A fresh copy of the packages, the tests and pyproject.toml with a [tool.mutmut] section."""
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    for entry in sorted(ROOT.iterdir()):
        if entry.is_dir() and (entry / "__init__.py").exists() and entry.name not in ("build", "tests"):
            shutil.copytree(entry, WORK / entry.name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tests", WORK / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    text = (ROOT / "pyproject.toml").read_text()
    if "tool" in tomllib.loads(text) and "mutmut" in tomllib.loads(text)["tool"]:
        raise SystemExit("pyproject.toml must not carry its own [tool.mutmut]: this script writes it")
    packages = sorted({m.split("/")[0] for m in modules})
    text += (
        "\n[tool.mutmut]\n"
        f"source_paths = {_toml_list(packages)}\n"
        f"only_mutate = {_toml_list(modules)}\n"
        f"pytest_add_cli_args_test_selection = {_toml_list(tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
    )
    (WORK / "pyproject.toml").write_text(text)
    # mutmut 3.8 reads `item._nodeid`, which pytest 9 no longer has: give it back (in the copy).
    with (WORK / "tests" / "conftest.py").open("a") as conftest:
        conftest.write(
            "\n\ndef pytest_collection_modifyitems(items):\n"
            "    for item in items:\n"
            "        if not hasattr(item, '_nodeid'):\n"
            "            item._nodeid = item.nodeid\n"
        )


def _mutmut(*args: str) -> subprocess.CompletedProcess[str]:
    # mutmut forks a child per mutant from a process that already ran the kernels: numba's default
    # OpenMP layer then kills the child (SIGTERM, "fork() called from a process already using GNU
    # OpenMP"), which mutmut would count as "suspicious". The workqueue layer survives a fork, and
    # the kernels' results do not depend on the threading layer.
    env = {**os.environ, "PYTHONPATH": str(WORK), "NUMBA_THREADING_LAYER": "workqueue"}
    exe = Path(sys.executable).parent / "mutmut"
    return subprocess.run([str(exe), *args], cwd=WORK, env=env, capture_output=True, text=True, check=False)


def run(max_children: int, names: list[str]) -> dict[str, str]:
    proc = _mutmut("run", "--max-children", str(max_children), *names)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"mutmut run failed ({proc.returncode})")
    return results()


def results() -> dict[str, str]:
    listing = _mutmut("results", "--all", "true").stdout
    statuses: dict[str, str] = {}
    for line in listing.splitlines():
        m = re.match(r"\s*([\w.]+__mutmut_\d+): (.+)$", line)
        if m:
            statuses[m.group(1)] = m.group(2).strip()
    if not statuses:
        raise SystemExit("mutmut reported no mutants:\n" + listing[-2000:])
    return statuses


def _by_function(names: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in names:
        function = name.rsplit("__mutmut_", 1)[0]
        counts[function] = counts.get(function, 0) + 1
    return counts


def diff_of(name: str) -> str:
    return _mutmut("show", name).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--modules", nargs="+", required=True)
    ap.add_argument("--tests", nargs="+", required=True)
    ap.add_argument("--max-children", type=int, default=2)
    ap.add_argument("--check", action="store_true", help="fail on a survivor not argued equivalent")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    ap.add_argument(
        "--rerun",
        nargs="*",
        metavar="MUTANT",
        help="reuse build/mutation: refresh its tests, rerun only these mutants, then report on all",
    )
    ap.add_argument(
        "--report-only", action="store_true", help="run nothing: report on build/mutation as it stands"
    )
    ap.add_argument(
        "--timeout-multiplier",
        type=float,
        help="mutmut's timeout_multiplier (default 15): how many times the tests' time a looping mutant runs",
    )
    args = ap.parse_args()
    if args.report_only:
        pass
    elif args.rerun is None:
        prepare(args.modules, args.tests)
    else:
        for tests in (WORK / "tests", WORK / "mutants" / "tests"):
            for test in args.tests:
                shutil.copy(ROOT / test, tests / Path(test).relative_to("tests"))
    if args.timeout_multiplier is not None:
        config = WORK / "pyproject.toml"
        text = re.sub(r"\ntimeout_multiplier = .*", "", config.read_text())
        config.write_text(text.rstrip("\n") + f"\ntimeout_multiplier = {args.timeout_multiplier}\n")
    statuses = results() if args.report_only else run(args.max_children, args.rerun or [])
    arguments: dict[str, str] = json.loads(EQUIVALENT.read_text()) if EQUIVALENT.exists() else {}
    # A run cut short (`--rerun` of some mutants only) leaves others "not checked": they are
    # reported as such and left out of the score, never counted as killed or as survivors.
    unchecked = sorted(n for n, s in statuses.items() if s == "not checked")
    statuses = {n: s for n, s in statuses.items() if s != "not checked"}
    survivors = sorted(n for n, s in statuses.items() if s not in KILLED)
    equivalent = [n for n in survivors if n in arguments]
    unexplained = [n for n in survivors if n not in arguments]
    per_module: dict[str, dict[str, int]] = {}
    for name, status in statuses.items():
        module = name.split(".x_")[0].split(".xǁ")[0]
        row = per_module.setdefault(module, {"mutants": 0, "killed": 0, "equivalent": 0})
        row["mutants"] += 1
        row["killed"] += status in KILLED
        row["equivalent"] += name in equivalent
    relevant = len(statuses) - len(equivalent)
    killed = sum(s in KILLED for s in statuses.values())
    out: dict[str, Any] = {
        "tool": "mutmut 3.8.0",
        "modules": args.modules,
        "tests": args.tests,
        "mutants": len(statuses),
        "not_checked": len(unchecked),
        "not_checked_by_function": _by_function(unchecked),
        "killed": killed,
        "equivalent": len(equivalent),
        "score_non_equivalent": round(killed / relevant, 4) if relevant else 1.0,
        "score_raw": round(killed / len(statuses), 4),
        "per_module": per_module,
        "survivors": [
            {
                "mutant": n,
                "status": statuses[n],
                "equivalent": n in arguments,
                "argument": arguments.get(n, "NOT ARGUED: a test should kill this mutant"),
                "diff": diff_of(n),
            }
            for n in survivors
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "survivors"}, indent=2))
    for n in unexplained:
        print("survivor not argued equivalent:", n)
    if args.check and unexplained:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
