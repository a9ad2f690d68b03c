"""What an organization's runtime asks of its learning side, and a synthetic implementation.

The runtime handles the chain, the store and sealing; a `Learner` only answers three questions:
what is my sanitised profile, what do I teach this student, and what did I gain from this bundle.
`SyntheticLearner` answers them from the synthetic federation of `matchmaker.simulation` (hidden
skills and a non-linear ground-truth gain), which exercises every mechanism of the market in
seconds; `agent.org.lora.LoraLearner` answers them with real LoRA training and sandboxed Pass@1.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from exchange.bundles import KnowledgeBundle, TokenizerId
from exchange.documents import PeftSummary, ProfileDoc
from matchmaker.policies import PolicyParams
from matchmaker.simulation import Federation, SimConfig

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


class SyntheticLearner:
    """An organization of the synthetic federation: its name is its simulated id (`org-00003`)."""

    def __init__(self, name: str, seed: int = 0, noise_std: float = 0.01) -> None:
        if not name.startswith("org-") or not name[4:].isdigit():
            raise ValueError(f"a synthetic organization is named org-NNNNN, not {name!r}")
        self.name = name
        self.index = int(name[4:])
        self.seed = seed
        self.noise_std = noise_std
        config = SimConfig(
            n_orgs=max(2, self.index + 1), rounds=0, seed=seed, categories=PolicyParams().categories
        )
        self._config = config
        self._federations: dict[int, Federation] = {}
        self._federation(self.index)
        self.rounds_learnt = 0

    def _federation(self, index: int) -> Federation:
        size = max(2, index + 1)
        if size not in self._federations:
            self._federations[size] = Federation(
                SimConfig(n_orgs=size, rounds=0, seed=self.seed, categories=self._config.categories)
            )
        return self._federations[size]

    def profile(self) -> ProfileDoc:
        return synthetic_profile(self._federation(self.index), self.name)

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
        teacher = SyntheticLearner(teacher_name, self.seed)  # validates the name
        federation = self._federation(max(self.index, teacher.index))
        ids = (teacher_name, self.name)
        truth = federation.true_gain_matrix(ids)[0, 1]
        rng = np.random.default_rng([self.seed, bundle.round, teacher.index, self.index])
        gain = float(np.clip(truth + rng.normal(0.0, self.noise_std), -1.0, 1.0))
        self.rounds_learnt += 1
        adapter = json.dumps(
            {"kind": "synthetic-adapter", "org": self.name, "round": bundle.round, "teacher": teacher_name},
            sort_keys=True,
        ).encode()
        return LearnResult(gain, adapter, f"synthetic gain from {teacher_name}")


LearnerFactory = Callable[[str], Learner]
