"""How long `knexa --help` takes in a fresh process -> bench/results/cli-startup.json.

Each command runs ``--repeats`` times in a new interpreter, interleaved with a reference (a bare
``python -c pass``) so that a busy machine shows in both: the figure to read is the median wall
time of ``knexa --help`` and its excess over the bare interpreter. Target: under 0.5 s.

Run: ``.venv/bin/python bench/cli_startup.py [--repeats 10]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "knexa --help": [sys.executable, "-m", "knexa", "--help"],
    "knexa org --help": [sys.executable, "-m", "knexa", "org", "--help"],
    "knexa matchmaker --help": [sys.executable, "-m", "knexa", "matchmaker", "--help"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS / "cli-startup.json")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            began = time.perf_counter()
            subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
            times[name].append(time.perf_counter() - began)
    reference = statistics.median(times["python -c pass"])
    rows = {
        name: {
            "median_s": statistics.median(values),
            "min_s": min(values),
            "excess_over_bare_python_s": statistics.median(values) - reference,
        }
        for name, values in times.items()
    }
    result = {
        "repeats": args.repeats,
        "commands": rows,
        "target_s": 0.5,
        "loadavg_1min": os.getloadavg()[0],
        "python": platform.python_version(),
    }
    for name, row in rows.items():
        print(f"{name:>26}: median {row['median_s']:.3f} s (min {row['min_s']:.3f} s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
