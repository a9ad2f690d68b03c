"""A colluding couple under LinUCB gains at most the v2 bound over the same couple reporting honestly."""

from __future__ import annotations

import math
from types import ModuleType

from tests.bench_scripts import load_bench


def _bench() -> ModuleType:
    return load_bench("collusion", register=True)


def test_colluders_excess_credits_stay_under_the_v2_bound() -> None:
    bench = _bench()
    result = bench.main(rounds=40, n_orgs=8, seed=3, write=False)
    assert result["colluding"]["colluder_pairs_chosen"] > result["honest"]["colluder_pairs_chosen"]
    assert result["bound_v2"] == 4 * math.ceil(40 / bench.CREDIT_WINDOW)
    assert 0 < result["excess_v2"] < result["bound_v2"]
    assert result["excess_v1"] > result["bound_v2"]  # v1 had no bound: the attack paid


def test_the_credit_book_decays_like_the_contract() -> None:
    book = _bench().CreditBook.empty()
    for round_id in range(1, 5):
        book.report(round_id, "t", "s", 1.0)
    assert book.v2["t"] == 1.0 + 0.5 + 0.25 + 0.125
    book.report(11, "t", "s", 1.0)  # a new window
    assert book.v2["t"] == 1.875 + 1.0
    book.report(12, "t", "other", -0.5)
    assert book.v1["t"] == 5.0
