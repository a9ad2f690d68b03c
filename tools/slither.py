"""Run Slither over the market's contracts and fail on any high- or medium-impact finding.

Slither analyses a solc standard-json input here (the same sources and settings as
`knexa chain compile`), compiled through the project's solc (the solcjs shim where no native solc
exists), from a temporary folder without foundry.toml.

Run: `make slither`, or `.venv/bin/python tools/slither.py --slither .venv-slither/bin/slither`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from chain.compiler import COMPILER_SETTINGS, collect_sources, solc_binary

FAILING_IMPACTS = {"High", "Medium"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slither", default=".venv-slither/bin/slither", help="the slither executable")
    parser.add_argument("--json", type=Path, help="also write Slither's findings here")
    arguments = parser.parse_args()
    slither = Path(arguments.slither).resolve()
    settings = {key: value for key, value in COMPILER_SETTINGS.items() if key != "outputSelection"}
    sources = collect_sources()
    standard_input = {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in sources.items()},
        "settings": settings,
    }
    with tempfile.TemporaryDirectory(prefix="knexa-slither-") as folder:
        work = Path(folder)
        for unit, text in sources.items():  # Slither maps findings back to files on disk
            (work / unit).parent.mkdir(parents=True, exist_ok=True)
            (work / unit).write_text(text, encoding="utf-8")
        (work / "input.json").write_text(json.dumps(standard_input), encoding="utf-8")
        command = [
            str(slither),
            "input.json",
            "--compile-force-framework",
            "solc-json",
            "--solc",
            str(solc_binary().resolve()),
            "--filter-paths",
            "@openzeppelin",
            "--json",
            "findings.json",
        ]
        completed = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
        findings_path = work / "findings.json"
        if not findings_path.exists():
            sys.stderr.write(completed.stdout + completed.stderr)
            return 2
        report = json.loads(findings_path.read_text(encoding="utf-8"))
    if not report.get("success", False):
        sys.stderr.write(f"slither failed: {report.get('error')}\n")
        return 2
    detectors = report.get("results", {}).get("detectors", [])
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(detectors, indent=2) + "\n", encoding="utf-8")
    impacts = Counter(str(item["impact"]) for item in detectors)
    for item in detectors:
        if item["impact"] in FAILING_IMPACTS:
            print(f"[{item['impact']}] {item['check']}: {item['description'].strip()}")
    summary = ", ".join(f"{impact.lower()} {impacts.get(impact, 0)}" for impact in ("High", "Medium", "Low"))
    print(
        f"slither: {summary}, informational {impacts.get('Informational', 0)}, optimization {impacts.get('Optimization', 0)}"
    )
    return 1 if any(impacts.get(impact, 0) for impact in FAILING_IMPACTS) else 0


if __name__ == "__main__":
    sys.exit(main())
