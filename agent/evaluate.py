"""Pass@1 of a model on problems: greedy completion, then the hidden tests in the sandbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from agent.data.problems import Problem
from agent.generation import greedy_complete
from agent.models.tokenizer import Codec
from agent.sandbox import Evaluator


@dataclass(frozen=True)
class PassAt1:
    rate: float
    passed: tuple[bool, ...]
    completions: tuple[str, ...]

    def by_category(self, problems: Sequence[Problem]) -> dict[str, float]:
        totals: dict[str, list[int]] = {}
        for p, ok in zip(problems, self.passed, strict=True):
            totals.setdefault(p.category, []).append(int(ok))
        return {c: sum(v) / len(v) for c, v in sorted(totals.items())}


def completions_pass(
    problems: Sequence[Problem], completions: Sequence[str], evaluator: Evaluator, *, public: bool = False
) -> list[bool]:
    """Run each completion against its problem's hidden (or public) tests."""
    programs = [
        p.program(c, p.public_tests if public else None) for p, c in zip(problems, completions, strict=True)
    ]
    return [r.passed for r in evaluator.run_many(programs)]


def pass_at_1(
    model: nn.Module,
    codec: Codec,
    problems: Sequence[Problem],
    evaluator: Evaluator,
    *,
    max_new_tokens: int = 64,
    max_len: int = 160,
) -> PassAt1:
    """Greedy Pass@1 (one deterministic sample per problem, so Pass@1 is the pass rate)."""
    if not problems:
        return PassAt1(0.0, (), ())
    comps = greedy_complete(
        model, codec, [p.prompt for p in problems], max_new_tokens=max_new_tokens, max_len=max_len
    )
    ok = completions_pass(problems, comps, evaluator)
    return PassAt1(sum(ok) / len(ok), tuple(ok), tuple(comps))
