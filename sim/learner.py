"""The synthetic learner: an organization of the synthetic federation, behind the runtime's `Learner`.

Its skills are hidden traits of `sim.synthetic.Federation` (seeded by the organization's index), and
its gain from a teacher is the federation's non-linear ground truth plus seeded noise. It exercises
every mechanism of the market (profiles, pairing, sealing, reports, settlement, replay) in seconds.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from market.bundles import KnowledgeBundle, TokenizerId
from market.categories import DEFAULT_CATEGORIES
from market.documents import PeftSummary, ProfileDoc
from org.learners import Learner, LearnResult, register_learner
from sim.errors import SimError
from sim.synthetic import Federation, SimConfig

SYNTHETIC_TOKENIZER = TokenizerId("knexa-synthetic", 512, hashlib.sha256(b"knexa-synthetic").hexdigest())


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


#: Names that are not `org-N` stand for one of this many simulated organizations (by a hash).
HASHED_ORGS = 64


def synthetic_index(name: str) -> int:
    """The simulated organization a name stands for: `org-00003` and `org-3` -> 3; any other
    name -> a stable hash of it below `HASHED_ORGS` (so every name the CLI accepts works)."""
    digits = name[4:] if name.startswith("org-") else ""
    if digits.isdigit() and len(digits) <= 6:
        return int(digits)
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % HASHED_ORGS


def synthetic_id(index: int) -> str:
    """The simulated federation's id of organization `index`."""
    return f"org-{index:05d}"


def _config(orgs: int, seed: int) -> SimConfig:
    return SimConfig(n_orgs=max(2, orgs), rounds=0, seed=seed, categories=DEFAULT_CATEGORIES)


def synthetic_federation(orgs: int, seed: int = 0) -> Federation:
    """The federation of `orgs` simulated organizations that `SyntheticLearner`s of `seed` agree on."""
    return Federation(_config(orgs, seed))


class SyntheticLearner:
    """An organization of the synthetic federation; its name picks its simulated id (`synthetic_index`)."""

    def __init__(
        self, name: str, seed: int = 0, noise_std: float = 0.01, federation: Federation | None = None
    ) -> None:
        """`federation`: one built with the same seed, shared by many learners of one process (a
        market of N organizations builds one federation of N, not N federations of up to N)."""
        self.name = name
        self.index = synthetic_index(name)
        self.seed = seed
        self.noise_std = noise_std
        if federation is not None and federation.config != _config(federation.config.n_orgs, seed):
            raise SimError("the shared federation was not built by synthetic_federation with this seed")
        self._federation: Federation = self._covering(self.index, federation)
        self.rounds_learnt = 0

    def _covering(self, index: int, current: Federation | None = None) -> Federation:
        """A federation that includes organization `index` (`current`, or this learner's, when it
        does). An organization's hidden traits depend only on the seed and its index, not on the
        federation's size, so a larger one agrees."""
        if current is None:
            current = getattr(self, "_federation", None)
        if current is None or index >= len(current.orgs):
            current = synthetic_federation(index + 1, self.seed)
        return current

    def profile(self) -> ProfileDoc:
        return synthetic_profile(self._federation, synthetic_id(self.index))

    def teach(
        self, round_id: int, teacher: str, student: str, *, student_tokenizer: str | None = None
    ) -> KnowledgeBundle:
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
        pair = (synthetic_id(teacher_index), synthetic_id(self.index))
        truth = self._federation.true_gain_matrix(pair)[0, 1]
        rng = np.random.default_rng([self.seed, bundle.round, teacher_index, self.index])
        gain = float(np.clip(truth + rng.normal(0.0, self.noise_std), -1.0, 1.0))
        self.rounds_learnt += 1
        adapter = json.dumps(
            {"kind": "synthetic-adapter", "org": self.name, "round": bundle.round, "teacher": teacher_name},
            sort_keys=True,
        ).encode()
        return LearnResult(gain, adapter, f"synthetic gain from {teacher_name}")


def _build_synthetic(name: str, home: Path, settings: dict[str, Any]) -> Learner:
    return SyntheticLearner(name, int(settings.get("seed", 0)))


def register() -> None:
    """Register the `synthetic` learner kind with the organization runtime."""
    register_learner("synthetic", _build_synthetic)
