"""What an organization's runtime asks of its learning side, and a synthetic implementation.

The runtime handles the chain, the store and sealing; a `Learner` only answers three questions:
what is my sanitised profile, what do I teach this student, and what did I gain from this bundle.
`SyntheticLearner` answers them from the synthetic federation of `sim.synthetic` (hidden
skills and a non-linear ground-truth gain), which exercises every mechanism of the market in
seconds; `org.lora.LoraLearner` answers them with real LoRA training and sandboxed Pass@1.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from market.bundles import KnowledgeBundle, TokenizerId
from market.documents import PeftSummary, ProfileDoc
from matchmaker.policies import PolicyParams
from sim.synthetic import Federation, SimConfig

SYNTHETIC_TOKENIZER = TokenizerId("knexa-synthetic", 512, hashlib.sha256(b"knexa-synthetic").hexdigest())


@dataclass(frozen=True)
class LearnResult:
    """A student's outcome: the validation Pass@1 gain and the adapter it now commits to."""

    gain: float
    adapter: bytes
    detail: str = ""


class Learner(Protocol):
    def profile(self) -> ProfileDoc:
        """The organization's current sanitised profile."""
        ...

    def teach(self, round_id: int, teacher: str, student: str) -> KnowledgeBundle:
        """A knowledge bundle for `student` on the public transfer set."""
        ...

    def learn(self, bundle: KnowledgeBundle, teacher_name: str) -> LearnResult:
        """Distil `bundle` (already verified and opened), evaluate, and report."""
        ...


def synthetic_profile(federation: Federation, sim_id: str) -> ProfileDoc:
    """The profile document a simulated organization publishes (its DP histogram included)."""
    org = federation.orgs[sim_id]
    features = org.features
    spent = org.accountant.epsilon_spent
    return ProfileDoc(
        model_family=features.family,
        size_bucket=str(features.size_bucket),
        peft=PeftSummary(rank=features.lora_rank, target_modules=("k_proj", "q_proj", "v_proj")),
        pass_at_1=features.pass1,
        pass_at_1_delta=features.pass1_delta,
        categories=features.categories,
        histogram=features.category_hist,
        epsilon=spent,
        budget_spent=spent,
    )


def synthetic_index(name: str) -> int:
    """The simulated organization a name stands for (`org-00003` -> 3)."""
    if not name.startswith("org-") or not name[4:].isdigit():
        raise ValueError(f"a synthetic organization is named org-NNNNN, not {name!r}")
    return int(name[4:])


class SyntheticLearner:
    """An organization of the synthetic federation: its name is its simulated id (`org-00003`)."""

    def __init__(self, name: str, seed: int = 0, noise_std: float = 0.01) -> None:
        self.name = name
        self.index = synthetic_index(name)
        self.seed = seed
        self.noise_std = noise_std
        self._federation = self._covering(self.index)
        self.rounds_learnt = 0

    def _covering(self, index: int) -> Federation:
        """A federation that includes organization `index`. An organization's hidden traits depend
        only on the seed and its index, not on the federation's size, so a larger one agrees."""
        current: Federation | None = getattr(self, "_federation", None)
        if current is None or index >= len(current.orgs):
            size = max(2, index + 1)
            current = Federation(
                SimConfig(n_orgs=size, rounds=0, seed=self.seed, categories=PolicyParams().categories)
            )
        return current

    def profile(self) -> ProfileDoc:
        return synthetic_profile(self._federation, self.name)

    def teach(self, round_id: int, teacher: str, student: str) -> KnowledgeBundle:
        return KnowledgeBundle(
            round=round_id,
            teacher=teacher,
            student=student,
            tokenizer=SYNTHETIC_TOKENIZER,
            prompt_ids=("transfer-0001", "transfer-0002"),
            completions=(f"    # taught by {self.name}\n    return a + b\n", "    return sorted(xs)\n"),
        )

    def learn(self, bundle: KnowledgeBundle, teacher_name: str) -> LearnResult:
        teacher_index = synthetic_index(teacher_name)
        self._federation = self._covering(teacher_index)
        truth = self._federation.true_gain_matrix((teacher_name, self.name))[0, 1]
        rng = np.random.default_rng([self.seed, bundle.round, teacher_index, self.index])
        gain = float(np.clip(truth + rng.normal(0.0, self.noise_std), -1.0, 1.0))
        self.rounds_learnt += 1
        adapter = json.dumps(
            {"kind": "synthetic-adapter", "org": self.name, "round": bundle.round, "teacher": teacher_name},
            sort_keys=True,
        ).encode()
        return LearnResult(gain, adapter, f"synthetic gain from {teacher_name}")


LearnerFactory = Callable[[str], Learner]
