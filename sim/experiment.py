"""The federation experiment: local-only vs peer-to-peer distillation under pluggable pairing.

Fairness rules (the "honest science" the README promises):

* every method spends the same optimizer steps of the same batch size per agent per round
  (a student's distillation step replaces, not adds to, its local step);
* all methods of one seed start from the *same* warmed-up agents (cloned), so differences
  are due to the method only;
* the transfer set is disjoint from the test set (checked before anything runs);
* several seeds; the summary reports means with 95% t-intervals, and paired differences.

The pairing function is a plain callable so that the real matchmaker policies (LinUCB,
`sim.matchmaking`) plug in: it gets the round number, the organisation names, a seeded RNG and
the history of previous rounds' reports, and returns directed ``(teacher, student)``
pairs, each organisation at most once per role.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from agent.agent import Agent, LearnReport
from agent.central import consensus_payload
from agent.data.splits import Suite, check_disjoint
from agent.models.tokenizer import Codec
from agent.sandbox import Evaluator
from agent.world import ExperimentConfig, build_federation_suite, make_agents
from matchmaker.policies import DirectedPair


@dataclass(frozen=True)
class RoundOutcome:
    round: int
    pairs: tuple[DirectedPair, ...]
    gains: dict[str, float]  # student -> validation Pass@1 gain
    test: dict[str, float]  # org -> test Pass@1 after the round
    bundle_sizes: dict[str, int] = field(default_factory=dict)  # student -> entries kept by its teacher
    test_by_category: dict[str, dict[str, float]] = field(default_factory=dict)  # org -> category -> rate


class PairingFn(Protocol):
    def __call__(
        self, round_idx: int, orgs: Sequence[str], rng: random.Random, history: Sequence[RoundOutcome]
    ) -> list[DirectedPair]: ...


def random_pairing(
    round_idx: int, orgs: Sequence[str], rng: random.Random, history: Sequence[RoundOutcome]
) -> list[DirectedPair]:
    """Every organisation is a student of a uniformly random other one (a random derangement)."""
    if len(orgs) < 2:
        return []
    while True:
        teachers = list(orgs)
        rng.shuffle(teachers)
        if all(t != s for t, s in zip(teachers, orgs, strict=True)):
            return list(zip(teachers, orgs, strict=True))


def round_robin_pairing(
    round_idx: int, orgs: Sequence[str], rng: random.Random, history: Sequence[RoundOutcome]
) -> list[DirectedPair]:
    """Round r: student i learns from organisation (i + 1 + r mod (n - 1)) mod n: a fixed rotation."""
    n = len(orgs)
    if n < 2:
        return []
    shift = 1 + round_idx % (n - 1)
    return [(orgs[(i + shift) % n], orgs[i]) for i in range(n)]


def check_pairs(pairs: Sequence[DirectedPair], orgs: Sequence[str]) -> None:
    """Directed pairs between known organisations, no self-pairs, at most one per role."""
    known = set(orgs)
    teachers = [t for t, _ in pairs]
    students = [s for _, s in pairs]
    if any(t not in known or s not in known for t, s in pairs):
        raise ValueError("pairing names an unknown organisation")
    if any(t == s for t, s in pairs):
        raise ValueError("an organisation cannot teach itself")
    if len(set(teachers)) != len(teachers) or len(set(students)) != len(students):
        raise ValueError("an organisation appears twice in one role")


PAIRINGS: dict[str, PairingFn] = {"random": random_pairing, "round-robin": round_robin_pairing}


class CentralDistillation:
    """The `central-kd` method: every organisation teaches, a server averages all the answers
    (`agent.central.consensus_payload`) and every organisation distils that one consensus."""

    def __repr__(self) -> str:
        return "central-kd"


CENTRAL_KD = CentralDistillation()

# A method of the experiment: a pairing (P2P distillation), the central baseline, or None (local-only).
Method = PairingFn | CentralDistillation | None


ProgressFn = Callable[[str, int], None]  # (what, units done) for progress bars
LogFn = Callable[[str], None]


def run_method(
    agents: Sequence[Agent],
    suite: Suite,
    cfg: ExperimentConfig,
    pairing: Method,
    evaluator: Evaluator,
    seed: int,
    progress: ProgressFn | None = None,
    log: LogFn | None = None,
) -> list[RoundOutcome]:
    """Run ``cfg.rounds`` rounds on (already cloned) agents; ``pairing=None`` is local-only."""
    by_name = {a.name: a for a in agents}
    names = [a.name for a in agents]
    rng = random.Random(f"{seed}/pairing")
    history: list[RoundOutcome] = []
    bind = getattr(pairing, "bind", None)
    if bind is not None:  # a matchmaker policy: it starts each run from the organizations' profiles
        bind(agents, seed, {a.name: a.validate(evaluator) for a in agents})
    for r in range(cfg.rounds):
        gains: dict[str, float] = {}
        sizes: dict[str, int] = {}
        pairs: list[DirectedPair] = []
        if isinstance(pairing, CentralDistillation):
            answers = {a.name: a.teach(suite.transfer, evaluator, cfg.teacher) for a in agents}
            consensus = consensus_payload(
                agents, answers, suite.transfer, cfg.teacher.top_k, cfg.teacher.max_len
            )
            for a in agents:
                gains[a.name] = a.learn(consensus, evaluator, cfg.distill).gain
                sizes[a.name] = len(consensus.entries)
        else:
            pairs = pairing(r, names, rng, history) if pairing is not None else []
            check_pairs(pairs, names)
            # Teachers answer from their state at the start of the round.
            payloads = {t: by_name[t].teach(suite.transfer, evaluator, cfg.teacher) for t, _ in pairs}
            teacher_of = {s: t for t, s in pairs}
            for a in agents:
                if a.name in teacher_of:
                    report: LearnReport = a.learn(payloads[teacher_of[a.name]], evaluator, cfg.distill)
                    gains[a.name] = report.gain
                else:
                    a.train_local()
            sizes = {s: len(payloads[t].entries) for t, s in pairs}
        tested = (r + 1) % cfg.test_every == 0 or r + 1 == cfg.rounds
        results = {a.name: a.evaluate(suite.test, evaluator) for a in agents} if tested else {}
        test = {name: res.rate for name, res in results.items()}
        by_category = {name: res.by_category(suite.test) for name, res in results.items()}
        history.append(RoundOutcome(r + 1, tuple(pairs), gains, test, sizes, by_category))
        if log is not None:
            mean_gain = statistics.fmean(gains.values()) if gains else 0.0
            log(
                f"seed {seed} round {r + 1}: mean test "
                f"{statistics.fmean(test.values()) if test else math.nan:.3f}, "
                f"mean val gain {mean_gain:+.3f}, pairs {pairs}, bundle sizes {sizes}"
            )
        if progress is not None:
            progress("round", 1)
    return history


def run_seed(
    cfg: ExperimentConfig,
    seed: int,
    methods: dict[str, Method],
    codec: Codec,
    bases: dict[str, Any],
    evaluator: Evaluator,
    progress: ProgressFn | None = None,
    log: LogFn | None = None,
) -> dict[str, Any]:
    """One seed: data, warm-up (shared by all methods), then every method from clones."""
    torch.manual_seed(seed)
    suite = build_federation_suite(cfg, seed)
    check_disjoint(suite)
    agents = make_agents(cfg, suite, codec, bases, seed)
    for a in agents:
        a.train_local(cfg.warmup_steps)
    start = {a.name: a.evaluate(suite.test, evaluator).rate for a in agents}
    if log is not None:
        log(f"seed {seed}: after warm-up, test Pass@1 {start}")
    out: dict[str, Any] = {
        "seed": seed,
        "start": start,
        "families": {a.name: a.spec.name for a in agents},
        "mixes": {a.name: a.org.mix for a in agents},
        "methods": {},
    }
    for method, pairing in methods.items():
        if log is not None:
            log(f"seed {seed}: method {method}")
        history = run_method([a.clone() for a in agents], suite, cfg, pairing, evaluator, seed, progress, log)
        out["methods"][method] = [asdict(h) for h in history]
    return out


def mean_ci(values: Sequence[float]) -> dict[str, float]:
    """Mean and 95% t-interval half-width (0 for a single value)."""
    n = len(values)
    m = statistics.fmean(values) if values else math.nan
    if n < 2:
        return {"mean": m, "ci95": 0.0, "n": float(n)}
    from scipy.stats import t as student_t

    half = float(student_t.ppf(0.975, n - 1)) * statistics.stdev(values) / math.sqrt(n)
    return {"mean": m, "ci95": half, "n": float(n)}


def ratio_ci(values: Sequence[float], baseline: Sequence[float], resamples: int = 10_000) -> dict[str, float]:
    """Ratio of means ``mean(values) / mean(baseline)`` with a 95% paired bootstrap interval over seeds.

    Per-seed ratios would blow up when a seed's baseline is near zero; the ratio of means does
    not. The bootstrap resamples seeds (pairs stay together) with a fixed RNG, so it is replayable.
    """
    a, b = np.asarray(values, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("ratio_ci needs two equally long, non-empty series")
    point = float(a.mean() / b.mean()) if b.mean() > 0 else math.nan
    if a.size < 2:
        return {"mean": point, "low": point, "high": point, "n": float(a.size)}
    idx = np.random.default_rng(0).integers(0, a.size, size=(resamples, a.size))
    num, den = a[idx].mean(axis=1), b[idx].mean(axis=1)
    ratios = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    ratios = ratios[~np.isnan(ratios)]
    if ratios.size == 0:
        return {"mean": point, "low": math.nan, "high": math.nan, "n": float(a.size)}
    low, high = np.percentile(ratios, [2.5, 97.5])
    return {"mean": point, "low": float(low), "high": float(high), "n": float(a.size)}


def own_mix_rate(by_category: dict[str, dict[str, float]], mixes: dict[str, dict[str, float]]) -> float:
    """Mean over organisations of test Pass@1 weighted by each one's own category mix.

    The balanced test set measures general skill; an organisation itself cares about the
    problems it meets, which look like its private data: this is that view of the same run.
    """
    rates = [
        sum(mixes[org][c] * rate for c, rate in cats.items()) / sum(mixes[org][c] for c in cats)
        for org, cats in by_category.items()
    ]
    return statistics.fmean(rates)


def summarise(per_seed: Sequence[dict[str, Any]], rounds: int) -> dict[str, Any]:
    """Per method: mean test Pass@1 per tested round (over orgs, then seeds), paired differences
    from local-only, ratios to random, and the mean validation gain the students reported."""
    methods = list(per_seed[0]["methods"])
    curve: dict[str, list[dict[str, float]]] = {}
    final: dict[str, list[float]] = {}
    own_mix: dict[str, list[float]] = {}
    for m in methods:
        per_round = [{"round": 0.0, **mean_ci([statistics.fmean(s["start"].values()) for s in per_seed])}]
        for r in range(1, rounds + 1):
            tests = [s["methods"][m][r - 1]["test"] for s in per_seed]
            if all(tests):  # rounds without a test evaluation (cfg.test_every) leave no point
                per_round.append(
                    {"round": float(r), **mean_ci([statistics.fmean(t.values()) for t in tests])}
                )
        curve[m] = per_round
        final[m] = [statistics.fmean(s["methods"][m][-1]["test"].values()) for s in per_seed]
        own_mix[m] = [own_mix_rate(s["methods"][m][-1]["test_by_category"], s["mixes"]) for s in per_seed]
    out: dict[str, Any] = {
        "curve": curve,
        "final": {m: mean_ci(v) for m, v in final.items()},
        "final_own_mix": {m: mean_ci(v) for m, v in own_mix.items()},
    }
    if "local-only" in final:
        out["vs_local"] = {
            m: mean_ci([a - b for a, b in zip(final[m], final["local-only"], strict=True)])
            for m in methods
            if m != "local-only"
        }
    if "random" in final:
        out["ratio_vs_random"] = {m: ratio_ci(final[m], final["random"]) for m in methods if m != "random"}
    out["reported_gain"] = {
        m: mean_ci(
            [
                statistics.fmean(g for rec in s["methods"][m] for g in rec["gains"].values())
                for s in per_seed
                if any(rec["gains"] for rec in s["methods"][m])
            ]
        )
        for m in methods
        if m != "local-only"
    }
    return out
