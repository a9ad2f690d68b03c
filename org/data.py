"""An organization's own problems: the JSONL schema `knexa org init --data` reads, and its validation.

One JSON object per line (blank lines are skipped)::

    {"id": "acme-17",                       # optional; default: "<file stem>-<line number>"
     "prompt": "def add(a, b):\\n    \\"\\"\\"Add.\\"\\"\\"\\n",   # signature + docstring, required
     "entry_point": "add",                  # the function the tests call, required
     "public_tests": ["assert add(1, 2) == 3"],          # may be shown (teachers filter with them)
     "hidden_tests": ["assert add(-1, 1) == 0"],         # decide Pass@1, never leave the organization
     "category": "arithmetic",              # optional; one of the market's categories
     "solution": "    return a + b\\n"}      # optional reference body (trains the adapter)

`prompt` must define `entry_point` (`def NAME(`). Tests are Python statements run after the
completed function, in the sandbox. A problem without `solution` is used for validation only.
Every bad line is reported with its line number and field, all at once, and nothing is written.
The public transfer set (`--transfer`) uses the same schema; only id, prompt, entry point,
public tests and category are read from it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.data.problems import Problem
from agent.data.splits import TransferItem
from agent.data.templates import CATEGORIES
from org.errors import OrgError

REQUIRED = ("prompt", "entry_point", "public_tests", "hidden_tests")
OPTIONAL = ("id", "category", "solution")
MAX_LINE_BYTES = 1 << 20


@dataclass(frozen=True)
class LineError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


class DataFileError(OrgError, ValueError):
    """A data file does not follow the schema; `errors` holds one entry per bad line and field."""

    def __init__(self, path: Path, errors: Sequence[LineError]) -> None:
        self.path = path
        self.errors = tuple(errors)
        shown = "; ".join(str(error) for error in self.errors[:5])
        more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        super().__init__(f"{path}: {shown}{more}")


def _tests(value: Any, line: int, name: str, errors: list[LineError]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        errors.append(LineError(line, name, "expected a list of strings (Python statements)"))
        return ()
    for index, test in enumerate(value):
        try:
            compile(test, f"<{name}[{index}]>", "exec")
        except SyntaxError as error:
            errors.append(LineError(line, f"{name}[{index}]", f"not valid Python ({error.msg})"))
    return tuple(value)


def _parse_line(
    raw: str, line: int, default_id: str, errors: list[LineError], *, hidden_required: bool = True
) -> Problem | None:
    if len(raw.encode()) > MAX_LINE_BYTES:
        errors.append(LineError(line, "$", f"longer than {MAX_LINE_BYTES} bytes"))
        return None
    try:
        row = json.loads(raw)
    except json.JSONDecodeError as error:
        errors.append(LineError(line, "$", f"not JSON ({error.msg} at column {error.colno})"))
        return None
    if not isinstance(row, dict):
        errors.append(LineError(line, "$", "expected a JSON object"))
        return None
    before = len(errors)
    required = REQUIRED if hidden_required else tuple(k for k in REQUIRED if k != "hidden_tests")
    for key in required:
        if key not in row:
            errors.append(LineError(line, key, "missing"))
    for key in sorted(row.keys() - set(REQUIRED) - set(OPTIONAL)):
        errors.append(LineError(line, key, f"unknown field (known: {', '.join(REQUIRED + OPTIONAL)})"))
    for key in ("id", "prompt", "entry_point", "category", "solution"):
        if key in row and not isinstance(row[key], str):
            errors.append(LineError(line, key, "expected a string"))
    if len(errors) > before:
        return None
    prompt, entry = str(row["prompt"]), str(row["entry_point"])
    if not entry.isidentifier():
        errors.append(LineError(line, "entry_point", f"{entry!r} is not a Python identifier"))
    elif f"def {entry}(" not in prompt:
        errors.append(LineError(line, "prompt", f"does not define the entry point ({entry})"))
    public = _tests(row["public_tests"], line, "public_tests", errors)
    hidden = _tests(row.get("hidden_tests", []), line, "hidden_tests", errors)
    if hidden_required and row["hidden_tests"] == []:
        errors.append(LineError(line, "hidden_tests", "at least one hidden test is needed to score Pass@1"))
    category = row.get("category")
    if category is not None and category not in CATEGORIES:
        errors.append(LineError(line, "category", f"{category!r} is not one of {', '.join(CATEGORIES)}"))
    solution = str(row.get("solution", ""))
    if solution:
        try:
            compile(prompt + solution, "<solution>", "exec")
        except SyntaxError as error:
            errors.append(LineError(line, "solution", f"prompt + solution is not valid Python ({error.msg})"))
    if len(errors) > before:
        return None
    return Problem(
        pid=str(row.get("id") or default_id),
        template="custom",
        category=str(category or "uncategorized"),
        entry_point=entry,
        prompt=prompt,
        solution=solution,
        public_tests=public,
        hidden_tests=hidden,
    )


def parse_problems(path: Path, *, hidden_required: bool = True) -> tuple[Problem, ...]:
    """Every problem of `path`, or a `DataFileError` naming each bad line and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataFileError(path, [LineError(0, "$", f"cannot read the file ({error})")]) from error
    errors: list[LineError] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        problem = _parse_line(raw, number, f"{path.stem}-{number}", errors, hidden_required=hidden_required)
        if problem is None:
            continue
        if problem.pid in seen:
            errors.append(LineError(number, "id", f"{problem.pid!r} repeats line {seen[problem.pid]}"))
            continue
        seen[problem.pid] = number
        problems.append(problem)
    if not problems and not errors:
        errors.append(LineError(0, "$", "no problems in the file"))
    if errors:
        raise DataFileError(path, errors)
    return tuple(problems)


def parse_transfer(path: Path) -> tuple[TransferItem, ...]:
    """A public transfer set in the same schema (hidden tests, if any, are ignored)."""
    return tuple(TransferItem.from_problem(p) for p in parse_problems(path, hidden_required=False))


def problem_to_json(problem: Problem) -> dict[str, Any]:
    """The schema's JSON object for `problem` (e.g. to export HumanEval as an organization's data)."""
    row: dict[str, Any] = {
        "id": problem.pid,
        "prompt": problem.prompt,
        "entry_point": problem.entry_point,
        "public_tests": list(problem.public_tests),
        "hidden_tests": list(problem.hidden_tests),
    }
    if problem.category in CATEGORIES:
        row["category"] = problem.category
    if problem.solution:
        row["solution"] = problem.solution
    return row


def write_problems(path: Path, problems: Sequence[Problem]) -> None:
    path.write_text(
        "".join(json.dumps(problem_to_json(p), sort_keys=True) + "\n" for p in problems), encoding="utf-8"
    )
