"""Turning a :class:`~agent.data.templates.Template` into a concrete, testable problem.

Expected outputs of the tests are computed by running the (trusted, hand-written)
reference solution in-process at generation time; the sandbox later re-checks that every
reference solution passes its own tests when they run as untrusted code would.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from string import Template as StrTemplate
from typing import Any

from agent.data.templates import ARG_NAMES, EXTRA_ARG_NAMES, NAME_PREFIXES, Role, Template
from agent.sandbox import Program

N_PUBLIC_TESTS = 2
N_HIDDEN_TESTS = 5
_LETTERS = "abcdeinorst"


@dataclass(frozen=True)
class Problem:
    """A Python function-writing task.

    ``prompt`` is the signature and docstring; a model must write the indented body
    (``solution``). ``public_tests`` are example asserts that may be shown to anyone
    (used to filter teacher completions); ``hidden_tests`` decide Pass@1.
    """

    pid: str
    template: str
    category: str
    entry_point: str
    prompt: str
    solution: str
    public_tests: tuple[str, ...]
    hidden_tests: tuple[str, ...]

    @property
    def key(self) -> str:
        """Identity used for split disjointness: the task text itself."""
        return prompt_key(self.prompt)

    def program(self, completion: str, tests: tuple[str, ...] | None = None) -> Program:
        """The sandbox's program: prompt + completion as the untrusted source, the asserts
        (hidden by default) as the tests, which the program never sees."""
        chosen = self.hidden_tests if tests is None else tests
        return Program(self.prompt + completion, "\n".join(chosen) + "\n")

    @property
    def reference_program(self) -> Program:
        return self.program(self.solution)


def prompt_key(prompt: str) -> str:
    """A problem's identity: a hash of its prompt (signature + docstring)."""
    return hashlib.sha256(prompt.encode()).hexdigest()[:16]


def random_input(kind: str, rng: random.Random) -> Any:
    """One random argument of the given kind (kinds are documented in templates.py)."""
    if kind == "int":
        return rng.randint(-20, 20)
    if kind == "nat":
        return rng.randint(0, 7)
    if kind == "big":
        return rng.randint(0, 999)
    if kind in ("str", "word"):
        n = rng.randint(1 if kind == "word" else 0, 7)
        return "".join(rng.choice(_LETTERS) for _ in range(n))
    if kind in ("list", "nelist"):
        n = rng.randint(1 if kind == "nelist" else 0, 6)
        return [rng.randint(-5, 9) for _ in range(n)]
    if kind == "dict":
        keys = rng.sample("abcdefg", rng.randint(1, 4))
        return {k: rng.randint(-5, 9) for k in sorted(keys)}
    if kind == "words":
        return [random_input("word", rng) for _ in range(rng.randint(0, 4))]
    raise ValueError(f"unknown input kind {kind!r}")


def _indent(code: str) -> str:
    return "".join("    " + line + "\n" for line in code.split("\n"))


ANONYMOUS_NAMES = ("f", "g", "h", "func", "helper", "solve")


def instantiate(tpl: Template, rng: random.Random, *, anonymous: bool = False) -> Problem:
    """Sample names, constants and test inputs for one problem from ``tpl``.

    ``anonymous`` gives a generic function name and no docstring: plain code that shows
    syntax without the task description (used in the public pretraining corpus). Documented
    PRIVATE and HELD_OUT problems draw from wider name pools (a function-name prefix, extra
    parameter names), which gives every category more than 1,000 distinct prompts.
    """
    fname = rng.choice(ANONYMOUS_NAMES if anonymous else tpl.names)
    wide = not anonymous and tpl.role != Role.PUBLIC
    if wide:
        fname = rng.choice(NAME_PREFIXES) + fname
    mapping: dict[str, str] = {"f": fname}
    used: set[str] = {fname}
    for slot, kind in tpl.args:
        names = ARG_NAMES[kind] + EXTRA_ARG_NAMES[kind] if wide else ARG_NAMES[kind]
        name = rng.choice([n for n in names if n not in used])
        used.add(name)
        mapping[slot] = name
    for cname, choices in tpl.consts.items():
        mapping[cname] = str(rng.choice(choices))
    params = ", ".join(mapping[slot] for slot, _ in tpl.args)
    doc = StrTemplate(tpl.doc).substitute(mapping)
    prompt = f"def {fname}({params}):\n" if anonymous else f'def {fname}({params}):\n    """{doc}"""\n'
    solution = _indent(StrTemplate(tpl.body).substitute(mapping))
    namespace: dict[str, Any] = {}
    exec(prompt + solution, namespace)  # trusted: our own reference solution
    func = namespace[fname]
    tests: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(tests) < N_PUBLIC_TESTS + N_HIDDEN_TESTS and attempts < 200:
        attempts += 1
        inputs = [random_input(kind, rng) for _, kind in tpl.args]
        call = f"{fname}({', '.join(repr(v) for v in inputs)})"
        if call in seen:
            continue
        try:
            expected = func(*inputs)
        except Exception:  # an input outside the task's domain: draw another
            continue
        seen.add(call)
        tests.append(f"assert {call} == {expected!r}")
    if len(tests) < N_PUBLIC_TESTS + N_HIDDEN_TESTS:
        raise RuntimeError(f"template {tpl.tid} could not produce enough distinct tests")
    return Problem(
        pid=f"{tpl.tid}-{prompt_key(prompt)[:12]}",
        template=tpl.tid,
        category=tpl.category,
        entry_point=fname,
        prompt=prompt,
        solution=solution,
        public_tests=tuple(tests[:N_PUBLIC_TESTS]),
        hidden_tests=tuple(tests[N_PUBLIC_TESTS:]),
    )
