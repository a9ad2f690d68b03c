"""Mutation testing of the market ledger and the settlement math (mutmut 3.8, fast tests only).

Copies the packages the modules need and their fast tests into a scratch directory (mutmut writes
its `mutants/` tree next to the configuration), runs `mutmut run` with limited parallelism, and
writes the score to `bench/results/mutation-market.json`: killed, survived, the score over all
mutants and over the non-equivalent ones, and every survivor with the argument that it is
equivalent (from `EQUIVALENT` below; a survivor without one counts against the score). The
follower's tests start their own Anvil (the project-local one under `tools/`).

    python bench/mutation_market.py [--max-children 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["market/ledger.py", "market/parameters.py"]
PACKAGES = ["market", "chain", "exchange", "clikit"]
TESTS = ["tests/market/test_ledger_fold.py", "tests/market/test_ledger_follower.py"]
RESULT = ROOT / "bench" / "results" / "mutation-market.json"

#: mutant name -> why no test can tell it from the original (reviewed one by one).
_OVERWRITTEN = (
    "is overwritten before it is read: `__init__` calls `_start_clean()` right after, which sets "
    "`_events = []` and `_read_through = from_block - 1` again (and if it raises, no follower exists)"
)
EQUIVALENT: dict[str, str] = {
    "market.ledger.xǁLedgerFollowerǁsync__mutmut_6": (
        "`head > read_through` -> `>=`: when head == read_through the mutant reads the empty range "
        "[head + 1, head] (EventReader.pages yields no page, so no RPC call and no event) and sets "
        "read_through to the value it already has; state and answers are identical"
    ),
    "market.ledger.xǁLedgerFollowerǁ__init____mutmut_11": ("`_events = None` " + _OVERWRITTEN),
    "market.ledger.xǁLedgerFollowerǁ__init____mutmut_12": ("`_read_through = None` " + _OVERWRITTEN),
    "market.ledger.xǁLedgerFollowerǁ__init____mutmut_13": (
        "`_read_through = from_block + 1` " + _OVERWRITTEN
    ),
    "market.ledger.xǁLedgerFollowerǁ__init____mutmut_14": (
        "`_read_through = from_block - 2` " + _OVERWRITTEN
    ),
}

CONFIG = """
[tool.pytest.ini_options]
pythonpath = ["."]
addopts = "-q -p no:cacheprovider --import-mode=importlib"

[tool.mutmut]
source_paths = {modules}
also_copy = {packages}
pytest_add_cli_args_test_selection = {tests}
use_git_change_detection = false
"""


# mutmut 3.8's pytest harness reads `item._nodeid`, which pytest 9 no longer has: give it one.
CONFTEST = """

@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    for item in items:
        if not hasattr(item, "_nodeid"):
            item._nodeid = item.nodeid
"""


def _prepare(work: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, work / package, ignore=shutil.ignore_patterns("__pycache__"))
    (work / "tests").mkdir()
    (work / "tests" / "__init__.py").write_text("")
    (work / "tests" / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text() + CONFTEST)
    shutil.copytree(ROOT / "contracts" / "artifacts", work / "contracts" / "artifacts")
    for test in TESTS:
        target = work / test
        target.parent.mkdir(parents=True, exist_ok=True)
        (target.parent / "__init__.py").write_text("")
        shutil.copy(ROOT / test, target)
    (work / "pyproject.toml").write_text(
        CONFIG.format(
            modules=json.dumps(MODULES),
            packages=json.dumps([*PACKAGES, "contracts"]),
            tests=json.dumps(TESTS),
        )
    )


def _mutmut(work: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(work), "KNEXA_TOOLS_DIR": str(ROOT / "tools")}
    mutmut = Path(sys.executable).with_name("mutmut")
    done = subprocess.run(
        [str(mutmut), *args], cwd=work, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode not in (0, 1):
        raise SystemExit(f"mutmut {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="run in this directory and keep it (for `mutmut show`)")
    options = parser.parse_args()
    work = options.keep or Path(tempfile.mkdtemp(prefix="knexa-mutation-"))
    if options.keep is not None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    started = time.monotonic()
    try:
        _prepare(work)
        _mutmut(work, "run", "--max-children", str(options.max_children))
        listing = _mutmut(work, "results", "--all", "true")
        statuses = dict(re.findall(r"^\s*(\S+): (\S.*)$", listing, re.M))
        if not any(status == "killed" for status in statuses.values()):
            raise SystemExit(f"mutmut checked nothing (did the tests fail?):\n{listing[:2000]}")
        survivors = sorted(name for name, status in statuses.items() if status != "killed")
        diffs = {name: _mutmut(work, "show", name).strip() for name in survivors}
    finally:
        if options.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    killed = sum(1 for status in statuses.values() if status == "killed")
    equivalent = [name for name in survivors if name in EQUIVALENT]
    non_equivalent = len(statuses) - len(equivalent)
    result: dict[str, Any] = {
        "tool": "mutmut 3.8.0",
        "modules": MODULES,
        "tests": TESTS,
        "mutants": len(statuses),
        "killed": killed,
        "survived": len(survivors),
        "equivalent": len(equivalent),
        "score": round(killed / len(statuses), 4) if statuses else None,
        "score_non_equivalent": round(killed / non_equivalent, 4) if non_equivalent else None,
        "survivors": [
            {
                "mutant": name,
                "status": statuses[name],
                "equivalent_because": EQUIVALENT.get(name),
                "diff": diffs[name],
            }
            for name in survivors
        ],
        "seconds": round(time.monotonic() - started, 1),
        "command": f"python bench/mutation_market.py --max-children {options.max_children}",
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({key: value for key, value in result.items() if key != "survivors"}, indent=2))
    for survivor in result["survivors"]:
        print(f"\n--- {survivor['mutant']} ({survivor['status']}): {survivor['equivalent_because']}")
        print(survivor["diff"])


if __name__ == "__main__":
    main()
