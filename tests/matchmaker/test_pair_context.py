"""LinUCB with pair contexts: the pair's history and public signals are part of every arm's context."""

from __future__ import annotations

import numpy as np
import pytest

from matchmaker.context import context_dim
from matchmaker.mechanisms import PAIR_FEATURE_NAMES, Meeting, PairHistory, PublicSignals, extended_contexts
from matchmaker.policies import LinUCBPolicy, PolicyParams, make_policy, rng_for_round
from sim.synthetic import Federation, SimConfig


def _setup() -> tuple[Federation, list[str], PairHistory, PublicSignals]:
    fed = Federation(SimConfig(n_orgs=6, seed=3))
    ids = sorted(fed.active_ids())
    k = len(PolicyParams().categories)
    history = PairHistory((Meeting(0, ids[0], ids[1], 0.4), Meeting(1, ids[2], ids[3], -0.2)))
    signals = PublicSignals(
        passes={o: [0.1 * (i + 1) / k * (j + 1) for j in range(k)] for i, o in enumerate(ids)},
        data_size_bucket={o: i for i, o in enumerate(ids)},
        bundle_size={(ids[0], ids[1]): 12, (ids[4], ids[5]): 3},
    )
    return fed, ids, history, signals


def test_pair_context_is_off_by_default_and_out_of_the_digest() -> None:
    assert "pair_context" not in PolicyParams().to_dict()
    on = PolicyParams(pair_context=True)
    assert on.to_dict()["pair_context"] is True
    assert on.digest() != PolicyParams().digest()
    assert PolicyParams.from_dict(on.to_dict()) == on
    k = len(on.categories)
    assert on.linucb_config().dim == context_dim(k) + len(PAIR_FEATURE_NAMES)
    with pytest.raises(ValueError, match="pair_context"):
        PolicyParams(pair_context=1)  # type: ignore[arg-type]


def test_decision_contexts_are_the_extended_contexts_of_that_round() -> None:
    fed, ids, history, signals = _setup()
    policy = make_policy(PolicyParams(pair_context=True))
    d = policy.select(2, ids, fed.features(), rng_for_round(0, 2), history=history, signals=signals)
    full = extended_contexts(d.table, d.teacher_idx, d.student_idx, 2, history, signals)
    assert np.array_equal(d.contexts(), full)
    assert np.array_equal(full[d.chosen_arms], d.chosen_contexts)
    # the met pair's history is in its context: times met 1, last reward 0.4, recency 1/3
    arm = next(
        i for i, (t, s) in enumerate(zip(d.teacher_idx, d.student_idx, strict=True)) if (t, s) == (0, 1)
    )
    base = context_dim(len(d.table.categories))
    assert full[arm, base : base + 3].tolist() == [1.0, 0.4, 1.0 / 3.0]
    assert full[arm, base + 5] == np.log1p(12.0)


def test_learnt_pair_history_moves_scores_and_replays_bit_for_bit() -> None:
    fed, ids, history, signals = _setup()
    params = PolicyParams(pair_context=True, tie_break="seeded")

    def run() -> tuple[list[tuple[tuple[str, str], ...]], list[bytes]]:
        policy = make_policy(params)
        assert isinstance(policy, LinUCBPolicy)
        meetings: list[Meeting] = list(history.meetings)
        chosen, scores = [], []
        for r in range(2, 8):
            d = policy.select(
                r,
                ids,
                fed.features(),
                rng_for_round(5, r),
                history=PairHistory(tuple(meetings)),
                signals=signals,
            )
            chosen.append(d.pairs)
            scores.append(d.score_matrix().tobytes())
            # only (ids[0], ids[1]) pays
            rewards = {p: (1.0 if p == (ids[0], ids[1]) else -0.5) for p in d.pairs}
            meetings.extend(Meeting(r, t, s, v) for (t, s), v in rewards.items())
            policy.observe(d, rewards)
        return chosen, scores

    first, second = run(), run()
    assert first == second  # same inputs, same bits
    # the history columns carry weight after learning: a fresh history changes the scores
    policy = make_policy(params)
    d0 = policy.select(2, ids, fed.features(), rng_for_round(5, 2), history=history, signals=signals)
    policy.observe(d0, dict.fromkeys(d0.pairs, 1.0))
    with_history = policy.select(
        3, ids, fed.features(), rng_for_round(5, 3), history=history, signals=signals
    )
    without = policy.select(
        3, ids, fed.features(), rng_for_round(5, 3), history=PairHistory(), signals=signals
    )
    assert not np.array_equal(with_history.score_matrix(), without.score_matrix())


def test_no_teacher_option_leaves_students_alone_when_nothing_beats_it() -> None:
    fed, ids, history, signals = _setup()
    policy = make_policy(PolicyParams(pair_context=True))
    d = policy.select(
        2,
        ids,
        fed.features(),
        rng_for_round(0, 2),
        history=history,
        signals=signals,
        local_value=dict.fromkeys(ids, float("inf")),
    )
    assert d.pairs == ()
