"""Loading a `bench/` script as a module, for the tests that run a benchmark in miniature.

The scripts are not a package (each is run as ``python bench/NAME.py``), so a test loads one by path.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"


def load_bench(name: str, *, register: bool = False) -> ModuleType:
    """``bench/<name>.py`` as module ``bench_<name>``; ``register`` puts it in ``sys.modules``
    (a script whose dataclasses or pickles look their module up needs that)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH_DIR / f"{name}.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(BENCH_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
