"""What an organization's runtime asks of its learning side, and the registry of learner kinds.

The runtime handles the chain, the store and sealing; a `Learner` only answers three questions:
what is my sanitised profile, what do I teach this student, and what did I gain from this bundle.
`org.lora.LoraLearner` answers them with real LoRA training and sandboxed Pass@1. Other kinds
register themselves by name (the composition root registers `sim.learner.SyntheticLearner`,
simulated skills that exercise every mechanism of the market in seconds), so this package never
depends on the simulation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from market.bundles import KnowledgeBundle
from market.documents import ProfileDoc
from org.errors import OrgError


@dataclass(frozen=True)
class LearnResult:
    """A student's outcome: the gain it reports on chain and the adapter it now commits to.

    ``gain`` is the paper's Eq. 3 reward (`agent.reward.eq3_reward`: validation NLL reduction
    minus the bundle-size charge) for learners that measure a loss, clipped to [-1, 1]; the
    validation Pass@1 change stays in the organization's own log (``pass1_gain``).
    """

    gain: float
    adapter: bytes
    detail: str = ""
    pass1_gain: float | None = None
    nll_before: float | None = None
    nll_after: float | None = None
    bundle_kib: float | None = None


class Learner(Protocol):
    def profile(self) -> ProfileDoc:
        """The organization's current sanitised profile."""
        ...

    def teach(
        self, round_id: int, teacher: str, student: str, *, student_tokenizer: str | None = None
    ) -> KnowledgeBundle:
        """A knowledge bundle for `student` on the public transfer set. `student_tokenizer` is the
        tokenizer digest of the student's profile: top-k logits are only worth sending when it
        equals the teacher's (otherwise, or when unknown, the learner decides)."""
        ...

    def learn(self, bundle: KnowledgeBundle, teacher_name: str) -> LearnResult:
        """Distil `bundle` (already verified and opened), evaluate, and report."""
        ...


LearnerFactory = Callable[[str], Learner]
#: Builds a learner from (organization name, its home directory, the `learner` settings of its config).
LearnerBuilder = Callable[[str, Path, dict[str, Any]], Learner]

_BUILDERS: dict[str, LearnerBuilder] = {}


class UnknownLearnerError(OrgError, KeyError):
    """No learner kind of that name is registered."""


def register_learner(kind: str, builder: LearnerBuilder) -> None:
    """Make `kind` available to `knexa org init --learner KIND` and to the runtime."""
    _BUILDERS[kind] = builder


def learner_kinds() -> tuple[str, ...]:
    return tuple(sorted(_BUILDERS))


def build_learner(kind: str, name: str, home: Path, settings: dict[str, Any]) -> Learner:
    if kind not in _BUILDERS:
        known = ", ".join(learner_kinds()) or "none"
        raise UnknownLearnerError(f"unknown learner kind {kind!r} (registered: {known})")
    return _BUILDERS[kind](name, home, settings)


def _build_lora(name: str, home: Path, settings: dict[str, Any]) -> Learner:
    from org.lora import LoraLearner  # torch is imported only by organizations that train

    return LoraLearner.from_settings(name, home, settings)


register_learner("lora", _build_lora)
