"""Collusion under LinUCB, scored by the v1 and the v2 credit rules -> bench/results/collusion.json.

A synthetic federation (sim.synthetic) of 8 organizations runs 60 rounds of LinUCB. In the
colluding run, two organizations report the maximum gain (+1) for each other whatever they learnt;
in the honest run (same seed, same events) they report their true noisy gains. Each run is scored
with the credit rule of v1 (credits = positive reported gain) and of v2 (KnexaMarket: the positive
gain halved per earlier report of the same directed pair inside a window of W rounds).

Bound of v2: one directed pair earns < 2 credits per window, so over R rounds the colluders' excess
over the honest run is < 2 * ceil(R / W) per directed pair (4 * ceil(R / W) for the two pairs of a
colluding couple). v1 has no bound: the excess grows with every round the bandit picks the pair.
Reputation is not scored: in v2 it follows delivery and reporting only, which colluders and honest
organizations do alike.

Run: `.venv/bin/python bench/collusion.py` (seconds).
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path and bench/matchmaker.py would shadow
# the `matchmaker` package: drop that folder before importing the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from matchmaker.policies import PolicyParams, make_policy, rng_for_round  # noqa: E402
from sim.synthetic import Federation, SimConfig  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CREDIT_WINDOW = 10  # creditWindowRounds of chain.client.DEFAULT_PARAMETERS
MAX_GAIN = 1.0


@dataclass
class CreditBook:
    """Credits per teacher under both rules, and the v2 repeat counter per directed pair."""

    v1: dict[str, float]
    v2: dict[str, float]
    window: dict[tuple[str, str], tuple[int, int]]

    @classmethod
    def empty(cls) -> CreditBook:
        return cls({}, {}, {})

    def report(self, round_id: int, teacher: str, student: str, gain: float) -> None:
        """One report, scored as the contract's `_decayedCredits` does (every report is a repeat)."""
        positive = max(0.0, min(MAX_GAIN, gain))
        self.v1[teacher] = self.v1.get(teacher, 0.0) + positive
        start, repeats = self.window.get((teacher, student), (round_id, 0))
        if repeats == 0 or round_id >= start + CREDIT_WINDOW:
            start, repeats = round_id, 0
        self.v2[teacher] = self.v2.get(teacher, 0.0) + positive / 2**repeats
        self.window[(teacher, student)] = (start, repeats + 1)


def run(rounds: int = 60, n_orgs: int = 8, seed: int = 3, collude: bool = True) -> dict[str, Any]:
    config = SimConfig(n_orgs=n_orgs, rounds=rounds, seed=seed)
    federation = Federation(config)
    params = PolicyParams(name="linucb", capacity=1)
    policy = make_policy(params)
    colluders = federation.active_ids()[:2]
    book = CreditBook.empty()
    chosen = 0
    for round_id in range(1, rounds + 1):
        ids = federation.active_ids()
        decision = policy.select(round_id, ids, federation.features(), rng_for_round(seed, round_id))
        reports = federation.report(round_id, decision.org_ids, decision.pairs)
        for teacher, student in list(reports):
            if {teacher, student} == set(colluders):
                chosen += 1
                if collude:
                    reports[(teacher, student)] = MAX_GAIN
            value = reports[(teacher, student)]
            if value is not None:
                book.report(round_id, teacher, student, value)
        policy.observe(decision, reports)
    return {
        "colluder_pairs_chosen": chosen,
        "credits_v1": sum(book.v1.get(org, 0.0) for org in colluders),
        "credits_v2": sum(book.v2.get(org, 0.0) for org in colluders),
    }


def main(rounds: int = 60, n_orgs: int = 8, seed: int = 3, write: bool = True) -> dict[str, Any]:
    colluding = run(rounds, n_orgs, seed, collude=True)
    honest = run(rounds, n_orgs, seed, collude=False)
    bound = 2 * 2 * math.ceil(rounds / CREDIT_WINDOW)  # two directed pairs, < 2 credits per window each
    result = {
        "benchmark": "collusion",
        "rounds": rounds,
        "organizations": n_orgs,
        "seed": seed,
        "credit_window_rounds": CREDIT_WINDOW,
        "colluding": colluding,
        "honest": honest,
        "excess_v1": colluding["credits_v1"] - honest["credits_v1"],
        "excess_v2": colluding["credits_v2"] - honest["credits_v2"],
        "bound_v2": bound,
    }
    if write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "collusion.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"colluding pair chosen {colluding['colluder_pairs_chosen']} times (honest run: "
        f"{honest['colluder_pairs_chosen']}); colluders' excess credits v1 {result['excess_v1']:.2f}, "
        f"v2 {result['excess_v2']:.2f} (v2 bound {bound})"
    )
    return result


if __name__ == "__main__":
    main()
