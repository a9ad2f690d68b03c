"""Synthetic learners sharing one federation agree with learners that build their own."""

from __future__ import annotations

import pytest

from market.bundles import KnowledgeBundle
from sim.errors import SimError
from sim.learner import SYNTHETIC_TOKENIZER, SyntheticLearner, synthetic_federation, synthetic_id

TEACHER = "0x" + "11" * 20
STUDENT = "0x" + "22" * 20


def _bundle(round_id: int) -> KnowledgeBundle:
    return KnowledgeBundle(
        round=round_id,
        teacher=TEACHER,
        student=STUDENT,
        tokenizer=SYNTHETIC_TOKENIZER,
        prompt_ids=("transfer-0001",),
        completions=("    return 1\n",),
    )


def test_a_shared_federation_gives_the_same_profiles_and_gains() -> None:
    shared = synthetic_federation(12, seed=3)
    for index in (0, 5, 11):
        alone = SyntheticLearner(synthetic_id(index), seed=3)
        together = SyntheticLearner(synthetic_id(index), seed=3, federation=shared)
        assert together.profile() == alone.profile()
        for teacher in (1, 7, 40):  # 40 lies beyond the shared federation: it grows as needed
            bundle = _bundle(teacher)
            assert together.learn(bundle, synthetic_id(teacher)) == alone.learn(bundle, synthetic_id(teacher))


def test_a_federation_of_another_seed_is_refused() -> None:
    with pytest.raises(SimError):
        SyntheticLearner(synthetic_id(1), seed=0, federation=synthetic_federation(4, seed=1))
