"""The `central-kd` baseline: probability averaging of teachers' top-k, and the server's consensus."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agent.central import average_topk


def _row(pairs: list[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.array([[i for i, _ in pairs]], dtype=np.int32)
    logprobs = np.array([[math.log(p) for _, p in pairs]], dtype=np.float32)
    return ids, logprobs


def test_average_is_taken_over_probabilities_of_all_teachers() -> None:
    sharp = _row([(3, 0.9), (4, 0.1)])  # a specialist, sure of token 3
    vague = _row([(5, 0.5), (6, 0.5)])  # a peer that does not know the category
    ids, logprobs = average_topk([sharp, vague], vocab_size=8, k=2)
    probs = dict(zip(ids[0].tolist(), np.exp(logprobs[0]).tolist(), strict=True))
    # mean = {3: .45, 4: .05, 5: .25, 6: .25}: top-2 is 3 and one of 5/6, renormalised over the two
    assert ids[0][0] == 3
    assert probs[3] == pytest.approx(0.45 / 0.70, rel=1e-6)
    assert sum(probs.values()) == pytest.approx(1.0, rel=1e-6)


def test_one_teacher_is_its_own_average_and_rows_are_renormalised() -> None:
    unnormalised = _row([(1, 0.3), (2, 0.2)])  # top-k of a larger distribution: sums to 0.5
    ids, logprobs = average_topk([unnormalised], vocab_size=4, k=2)
    assert ids[0].tolist() == [1, 2]
    assert np.exp(logprobs[0]).tolist() == pytest.approx([0.6, 0.4], rel=1e-6)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="nothing"):
        average_topk([], vocab_size=4, k=2)
    two = (np.zeros((2, 2), np.int32), np.full((2, 2), -0.7, np.float32))
    with pytest.raises(ValueError, match="lengths"):
        average_topk([_row([(1, 0.5), (2, 0.5)]), two], vocab_size=4, k=2)
