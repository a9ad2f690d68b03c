"""The federation benchmark's harness: a world of organisations, one round loop, six methods.

A round: the method names directed ``(teacher, student)`` pairs (each organisation at most once
per role); every paired teacher answers its student's *targeted* transfer prompts
(`agent.teacher.targeted_prompts`: the categories of the student's DP-released histogram first,
``targeted_prompts`` prompts in all) from its state at the start of the round; every paired student
distils its bundle for one round's budget, every other organisation trains locally for the same
budget (compute is matched: the same optimizer steps of the same batch size for every method).

The reward is the paper's Eq. 3, ``r = gamma * (L_pre - L_post) - delta * KB``: ``L`` is the
student's mean per-token NLL of its private validation reference solutions (64 problems), ``KB``
the bundle's size in KiB (``BundlePayload.nbytes``, the part of the sealed bundle that grows with
it). The bandit sees the reward minus the student's own baseline, an EMA of the Eq. 3 values of
its recent rounds (local rounds included, where ``KB`` is 0), so it learns which *teacher* helps,
not which student happens to be improving anyway.

Methods: ``local-only``; ``random`` (a random derangement); ``heuristic`` and ``knexa`` (the
matchmaker's policies: ``heuristic`` and LinUCB); ``central-kd`` (every student distils the server's
consensus of all teachers' answers to its targeted prompts); ``oracle`` (simulation only: every
round it tries every teacher on every student and local training on clones, and keeps the
assignment with the highest total Eq. 3 reward, "no teacher" included: an upper bound).

Metrics (pre-registered in the README): primary, each organisation's Pass@1 on its own test set
(64 problems drawn from its mix), averaged over organisations; secondary, Pass@1 on the balanced
global test (16 per category); also the mean Eq. 3 reward and the share of the oracle's primary gain
over local-only that a method realises. `run_seed_method` is the unit of work: one (seed, method)
result, saved as JSON as soon as it is done (`run_all` resumes from what is saved).
"""

from __future__ import annotations

import json
import math
import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from agent.agent import Agent
from agent.central import consensus_payload
from agent.data.splits import Suite, TransferItem, check_disjoint, pretraining_corpus
from agent.data.templates import CATEGORIES
from agent.data.world import OrgPlan, WorldConfig, build_world_suite, world_rows
from agent.models.tokenizer import Codec, shared_tokenizer
from agent.models.zoo import TINY_ZOO, ZOO, PretrainConfig, load_or_pretrain, n_params
from agent.payload import BundleEntry, BundlePayload
from agent.reward import RewardConfig, eq3_reward
from agent.sandbox import Evaluator
from agent.student import DistillConfig
from agent.teacher import TeacherConfig, targeted_prompts
from agent.training import Budget
from chain.units import from_wad, to_wad
from market.parameters import DEFAULT_PARAMETERS, reputation_ema
from market.privacy import PrivacyAccountant, release_histogram, size_bucket_of
from matchmaker.features import OrgFeatures
from matchmaker.mechanisms import Meeting, PairHistory, PublicSignals
from matchmaker.policies import Decision, Policy, PolicyParams, make_policy, rng_for_round
from sim.experiment import mean_ci, random_pairing, ratio_ci

Pair = tuple[str, str]
METHODS: tuple[str, ...] = ("local-only", "random", "heuristic", "central-kd", "knexa", "oracle")
LogFn = Callable[[str], None]


@dataclass(frozen=True)
class FederationConfig:
    """The benchmark's full run by default: the heterogeneous world, 20 rounds, 10 seeds."""

    world: WorldConfig = field(default_factory=WorldConfig)
    rounds: int = 20
    seeds: tuple[int, ...] = tuple(range(10))
    warmup_steps: int = 120
    budget: Budget = field(default_factory=lambda: Budget(steps=15, batch_size=16, lr=5e-3))
    corpus_size: int = 3000
    vocab_size: int = 1024
    pretrain: PretrainConfig = field(
        default_factory=lambda: PretrainConfig(steps=600, batch_size=16, lr=3e-3)
    )
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    targeted_prompts: int = 32
    gamma: float = 1.0
    delta_per_kib: float = 1e-5
    baseline_weight: float = 0.3  # EMA weight of the newest reward in a student's baseline
    epsilon: float = 1.0  # DP budget of each organisation's released category histogram
    test_every: int = 5
    workers: int = 1
    # knexa's mechanisms (pre-registered; see `knexa_params`): a repeat of the same directed pair
    # costs ``repeat_penalty`` (in normalised reward units) times ``repeat_decay ** rounds since``,
    # and the bandit discounts old evidence by ``discount`` per round (pair values drift).
    repeat_penalty: float = 0.1
    repeat_decay: float = 0.5
    discount: float = 0.95


def control_config(**overrides: Any) -> FederationConfig:
    """The old homogeneous world (160 problems each, tiny bases, good data), same code and metrics."""
    return FederationConfig(world=WorldConfig(kind="control"), **overrides)


def smoke_config(**overrides: Any) -> FederationConfig:
    """Seconds-scale: a 3-organisation heterogeneous world on the tiny zoo, for CI."""
    world = WorldConfig(
        n_orgs=3,
        min_train=8,
        max_train=40,
        strong=("gpt2-t",),
        weak=("llama-t",),
        val_per_org=8,
        test_per_org=4,
        test_per_category=1,
        transfer_per_category=2,
    )
    base: dict[str, Any] = {
        "world": world,
        "rounds": 2,
        "seeds": (0,),
        "warmup_steps": 4,
        "budget": Budget(steps=3, batch_size=8, lr=5e-3),
        "corpus_size": 300,
        "vocab_size": 512,
        "pretrain": PretrainConfig(steps=10, batch_size=8, lr=3e-3),
        "teacher": TeacherConfig(max_new_tokens=24),
        "targeted_prompts": 4,
        "test_every": 1,
    }
    base.update(overrides)
    return FederationConfig(**base)


# ----------------------------------------------------------------------------- world and agents


def build_bases(cfg: FederationConfig) -> tuple[Codec, dict[str, Any]]:
    """The shared tokenizer and every base model the world uses (pretrained once, cached)."""
    corpus = pretraining_corpus(cfg.corpus_size)
    codec = shared_tokenizer([p.prompt + p.solution for p in corpus], cfg.vocab_size)
    table = {**ZOO, **TINY_ZOO}
    bases = {
        name: load_or_pretrain(table[name], codec, corpus, cfg.pretrain)[0] for name in cfg.world.base_names()
    }
    return codec, bases


@dataclass
class World:
    """One seed's world after warm-up: data, plans, warmed-up agents, public histograms."""

    seed: int
    suite: Suite
    plans: list[OrgPlan]
    agents: list[Agent]
    histograms: dict[str, dict[str, float]]

    def rows(self) -> list[dict[str, object]]:
        return world_rows(self.suite, self.plans)


def dp_histograms(suite: Suite, seed: int, epsilon: float) -> dict[str, dict[str, float]]:
    """Each organisation's DP-released category histogram (what it makes public on joining)."""
    out: dict[str, dict[str, float]] = {}
    for index, org in enumerate(suite.orgs):
        counts = org.category_counts()
        release = release_histogram(
            {c: counts.get(c, 0) for c in CATEGORIES},
            rng=np.random.default_rng([seed, index, 0xD9]),
            accountant=PrivacyAccountant(),
            categories=CATEGORIES,
            epsilon=epsilon,
        )
        out[org.org] = dict(zip(CATEGORIES, (float(v) for v in release.histogram), strict=True))
    return out


def build_seed_world(cfg: FederationConfig, seed: int, codec: Codec, bases: dict[str, Any]) -> World:
    """Data, agents (each on its planned base), local warm-up: shared by every method of the seed."""
    torch.manual_seed(seed)
    suite, plans = build_world_suite(cfg.world, seed)
    check_disjoint(suite)
    table = {**ZOO, **TINY_ZOO}
    agents = [
        Agent(
            org,
            table[plan.base],
            codec,
            bases[plan.base],
            budget=cfg.budget,
            seed=seed * 100 + i,
            logit_noise=plan.logit_noise,
        )
        for i, (org, plan) in enumerate(zip(suite.orgs, plans, strict=True))
    ]
    for a in agents:
        a.train_local(cfg.warmup_steps)
    return World(seed, suite, plans, agents, dp_histograms(suite, seed, cfg.epsilon))


# ----------------------------------------------------------------------------- one round's pieces


class TeacherAnswers:
    """A round's teacher answers, each prompt answered at most once per teacher (state at round start)."""

    def __init__(self, cfg: FederationConfig, evaluator: Evaluator) -> None:
        self.cfg = cfg
        self.evaluator = evaluator
        self._answers: dict[str, dict[str, BundleEntry | None]] = {}

    def bundle(self, teacher: Agent, items: Sequence[TransferItem]) -> BundlePayload:
        known = self._answers.setdefault(teacher.name, {})
        missing = [i for i in items if i.pid not in known]
        if missing:
            answered = teacher.teach(missing, self.evaluator, self.cfg.teacher)
            kept = {e.pid: e for e in answered.entries}
            for item in missing:
                known[item.pid] = kept.get(item.pid)
        entries = tuple(e for e in (known[i.pid] for i in items) if e is not None)
        stats = {"prompts": float(len(items)), "kept": float(len(entries))}
        return BundlePayload(teacher.name, teacher.codec.identity, self.cfg.teacher.top_k, entries, stats)


def targets(world: World, cfg: FederationConfig, student: str) -> list[TransferItem]:
    return targeted_prompts(world.suite.transfer, world.histograms[student], cfg.targeted_prompts)


def eq3(cfg: FederationConfig, nll_before: float, nll_after: float, kib: float) -> float:
    """The paper's Eq. 3, gamma * (L_pre - L_post) - delta * KB (`agent.reward.eq3_reward`: the
    same function the organization runtime reports on chain)."""
    return eq3_reward(nll_before, nll_after, kib, RewardConfig(cfg.gamma, cfg.delta_per_kib))


def learn_from(cfg: FederationConfig, student: Agent, payload: BundlePayload, evaluator: Evaluator) -> float:
    """Distil one bundle for a round's budget; the Eq. 3 reward (an empty bundle is local training)."""
    report = student.learn(payload, evaluator, cfg.distill, pass1=False)
    return eq3(cfg, report.nll_before, report.nll_after, payload.nbytes() / 1024)


def train_alone(cfg: FederationConfig, student: Agent) -> float:
    """One round of local training; its Eq. 3 value (no bundle, so no KB term)."""
    before = student.val_nll()
    student.train_local()
    return eq3(cfg, before, student.val_nll(), 0.0)


def best_assignment(
    values: Mapping[Pair, float], local: Mapping[str, float], orgs: Sequence[str]
) -> list[Pair]:
    """The matching (each teacher at most once, each student at most once, "no teacher" allowed at
    the student's local value) with the highest total value."""
    n = len(orgs)
    big = -1e9
    cost = np.full((n, 2 * n), -big)  # students x (teachers + one "alone" column per student)
    for si, s in enumerate(orgs):
        for ti, t in enumerate(orgs):
            if (t, s) in values:
                cost[si, ti] = -values[(t, s)]
        cost[si, n + si] = -local[s]
    rows, cols = linear_sum_assignment(cost)
    return [(orgs[c], orgs[r]) for r, c in zip(rows, cols, strict=True) if c < n and cost[r, c] < -big / 2]


# ----------------------------------------------------------------------------- methods


def knexa_params(cfg: FederationConfig) -> PolicyParams:
    """The knexa method's LinUCB: pair contexts (history, the teacher's public passes dotted with
    the student's histogram, data-size buckets, the bundle on offer), seeded ties, repeat decay,
    a discounted bandit; a student is paired only when a teacher's score beats training alone."""
    return PolicyParams(
        name="linucb",
        categories=CATEGORIES,
        tie_break="seeded",
        pair_context=True,
        repeat_penalty=cfg.repeat_penalty,
        repeat_decay=cfg.repeat_decay,
        discount=cfg.discount,
    )


def data_size_bucket(n_train: int) -> int:
    """The public, coarse data-size bucket an organisation declares: ``round(log2(n))``."""
    return round(math.log2(max(1, n_train)))


class TeacherRecord:
    """What the market sees of each teacher's answers: per category, prompts answered and kept
    (passing the public tests). Its pass rates are Laplace-smoothed, ``(kept + 1) / (answered + 2)``."""

    def __init__(self) -> None:
        self.answered: dict[str, dict[str, int]] = {}
        self.kept: dict[str, dict[str, int]] = {}

    def add(self, teacher: str, items: Sequence[TransferItem], payload: BundlePayload) -> None:
        kept = {e.pid for e in payload.entries}
        for item in items:
            a = self.answered.setdefault(teacher, {})
            a[item.category] = a.get(item.category, 0) + 1
            if item.pid in kept:
                k = self.kept.setdefault(teacher, {})
                k[item.category] = k.get(item.category, 0) + 1

    def rate(self, teacher: str, category: str) -> float:
        a = self.answered.get(teacher, {}).get(category, 0)
        k = self.kept.get(teacher, {}).get(category, 0)
        return (k + 1) / (a + 2)


class PolicyMethod:
    """A matchmaker policy (``linucb`` or ``heuristic``) choosing pairs from public profiles, fed
    the students' baseline-removed Eq. 3 rewards. ``mechanisms`` (the knexa method): the policy
    is `knexa_params`, fed the pair history and the public signals, with the "no teacher" option
    worth 0 (rewards are centred on what the student gets training alone)."""

    def __init__(
        self,
        policy: str,
        cfg: FederationConfig,
        world: World,
        val_pass1: Mapping[str, float],
        mechanisms: bool = False,
    ) -> None:
        self.cfg = cfg
        self.world = world
        self.seed = world.seed
        self.mechanisms = mechanisms
        params = (
            knexa_params(cfg) if mechanisms else PolicyParams(name=policy, categories=CATEGORIES)  # type: ignore[arg-type]
        )
        self.policy: Policy = make_policy(params)
        self.features: dict[str, OrgFeatures] = {}
        for a in world.agents:
            self.features[a.name] = OrgFeatures(
                family=a.spec.family,
                size_bucket=size_bucket_of(n_params(a.model)),
                lora_rank=a.spec.lora_rank,
                pass1=val_pass1[a.name],
                pass1_delta=0.0,
                categories=CATEGORIES,
                category_hist=tuple(world.histograms[a.name][c] for c in CATEGORIES),
            )
        self.decision: Decision | None = None
        self.meetings: list[Meeting] = []
        self.teachers = TeacherRecord()
        self.buckets = {org.org: data_size_bucket(len(org.train)) for org in world.suite.orgs}

    def signals(self, orgs: Sequence[str]) -> PublicSignals:
        passes = {t: [self.teachers.rate(t, c) for c in CATEGORIES] for t in orgs}
        offer: dict[Pair, int] = {}
        for s in orgs:
            items = targets(self.world, self.cfg, s)
            for t in orgs:
                if t != s:
                    offer[(t, s)] = round(sum(self.teachers.rate(t, i.category) for i in items))
        return PublicSignals(passes=passes, data_size_bucket=self.buckets, bundle_size=offer)

    def select(self, round_idx: int, orgs: Sequence[str]) -> list[Pair]:
        rng = rng_for_round(self.seed, round_idx)
        if self.mechanisms:
            self.decision = self.policy.select(
                round_idx,
                list(orgs),
                self.features,
                rng,
                history=PairHistory(tuple(self.meetings)),
                local_value=dict.fromkeys(orgs, 0.0),
                signals=self.signals(orgs),
            )
        else:
            self.decision = self.policy.select(round_idx, list(orgs), self.features, rng)
        return [(t, s) for t, s in self.decision.pairs]

    def record_bundle(self, teacher: str, items: Sequence[TransferItem], payload: BundlePayload) -> None:
        self.teachers.add(teacher, items, payload)

    def observe(self, centred: Mapping[str, float], pairs: Sequence[Pair]) -> None:
        if self.decision is None:
            return
        chosen = set(pairs)
        rewards: dict[Pair, float | None] = {
            (t, s): centred.get(s) if (t, s) in chosen else None for t, s in self.decision.pairs
        }
        for (t, s), r in rewards.items():
            if r is None:
                continue
            self.meetings.append(Meeting(self.decision.round, t, s, r))
            theirs = self.features[t]
            # The teacher's reputation moves by the contract's rule (an EMA of a signal in [0, 1]).
            signal = (1.0 + math.tanh(r / 0.02)) / 2.0
            values = theirs.to_dict()
            values["reputation"] = from_wad(
                reputation_ema(
                    to_wad(theirs.reputation), to_wad(signal), DEFAULT_PARAMETERS.reputation_weight_bps
                )
            )
            values["credits"] = theirs.credits + max(0.0, r)
            self.features[t] = OrgFeatures.from_dict(values)
        self.policy.observe(self.decision, rewards)


@dataclass
class RoundLog:
    round: int
    pairs: list[Pair]
    rewards: dict[str, float]  # org -> Eq. 3 reward of its round (local rounds included)
    centred: dict[str, float]  # org -> reward minus its baseline before the round
    bundle_sizes: dict[str, int]
    bundle_kib: dict[str, float]
    val_nll: dict[str, float]
    own_test: dict[str, float] = field(default_factory=dict)
    global_test: dict[str, float] = field(default_factory=dict)
    # oracle only: every trial's reward, "teacher->student" and "local->student" (training alone)
    oracle_values: dict[str, float] = field(default_factory=dict)


def evaluate_tests(
    world: World, agents: Sequence[Agent], evaluator: Evaluator
) -> tuple[dict[str, float], dict[str, float]]:
    own = {a.name: a.evaluate(a.org.test, evaluator).rate for a in agents}
    glob = {a.name: a.evaluate(world.suite.test, evaluator).rate for a in agents}
    return own, glob


def run_seed_method(
    cfg: FederationConfig,
    world: World,
    method: str,
    evaluator: Evaluator,
    log: LogFn | None = None,
    start_tests: tuple[dict[str, float], dict[str, float]] | None = None,
    keep_agents: bool = False,
    tests: bool = True,
) -> dict[str, Any]:
    """One method's ``cfg.rounds`` rounds on clones of the seed's warmed-up agents (``keep_agents``:
    the agents as they end are returned too, under ``"agents"``)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    agents = [a.clone() for a in world.agents]
    by_name = {a.name: a for a in agents}
    names = [a.name for a in agents]
    rng = random.Random(f"{world.seed}/pairing")
    own0, glob0 = start_tests if start_tests is not None else evaluate_tests(world, agents, evaluator)
    policy = None
    if method in ("heuristic", "knexa"):
        val = {a.name: a.validate(evaluator) for a in agents}
        policy = PolicyMethod(
            "linucb" if method == "knexa" else "heuristic", cfg, world, val, mechanisms=method == "knexa"
        )
    baseline: dict[str, float] = {}  # EMA of every round's reward
    alone_baseline: dict[str, float] = {}  # EMA of the rounds the student trained alone
    rounds: list[RoundLog] = []
    for r in range(cfg.rounds):
        answers = TeacherAnswers(cfg, evaluator)
        rewards: dict[str, float] = {}
        sizes: dict[str, int] = {}
        kib: dict[str, float] = {}
        oracle_values: dict[str, float] = {}
        pairs: list[Pair] = []
        if method == "central-kd":
            union: dict[str, TransferItem] = {}
            for s in names:
                union.update({i.pid: i for i in targets(world, cfg, s)})
            items = list(union.values())
            full = {a.name: answers.bundle(a, items) for a in agents}
            consensus = consensus_payload(agents, full, items, cfg.teacher.top_k, cfg.teacher.max_len)
            for a in agents:
                wanted = {i.pid for i in targets(world, cfg, a.name)}
                mine = BundlePayload(
                    consensus.teacher,
                    consensus.tokenizer_id,
                    consensus.top_k,
                    tuple(e for e in consensus.entries if e.pid in wanted),
                )
                sizes[a.name], kib[a.name] = len(mine.entries), mine.nbytes() / 1024
                rewards[a.name] = learn_from(cfg, a, mine, evaluator)
        elif method == "oracle":
            trial: dict[Pair, tuple[float, Agent, BundlePayload]] = {}
            alone: dict[str, tuple[float, Agent]] = {}
            for s in names:
                items = targets(world, cfg, s)
                for t in names:
                    if t == s:
                        continue
                    payload = answers.bundle(by_name[t], items)
                    clone = by_name[s].clone()
                    trial[(t, s)] = (learn_from(cfg, clone, payload, evaluator), clone, payload)
                    oracle_values[f"{t}->{s}"] = trial[(t, s)][0]
                clone = by_name[s].clone()
                alone[s] = (train_alone(cfg, clone), clone)
                oracle_values[f"local->{s}"] = alone[s][0]
            pairs = best_assignment(
                {p: v[0] for p, v in trial.items()}, {s: v[0] for s, v in alone.items()}, names
            )
            teacher_of = {s: t for t, s in pairs}
            for s in names:
                if s in teacher_of:
                    value, clone, payload = trial[(teacher_of[s], s)]
                    sizes[s], kib[s] = len(payload.entries), payload.nbytes() / 1024
                else:
                    value, clone = alone[s]
                by_name[s] = clone
                rewards[s] = value
            agents = [by_name[n] for n in names]
        else:
            if method == "random":
                pairs = random_pairing(r, names, rng, [])
            elif policy is not None:
                pairs = policy.select(r, names)
            teacher_of = {s: t for t, s in pairs}
            payloads = {s: answers.bundle(by_name[t], targets(world, cfg, s)) for t, s in pairs}
            if policy is not None:
                for t, s in pairs:
                    policy.record_bundle(t, targets(world, cfg, s), payloads[s])
            for a in agents:
                if a.name in teacher_of:
                    payload = payloads[a.name]
                    sizes[a.name], kib[a.name] = len(payload.entries), payload.nbytes() / 1024
                    rewards[a.name] = learn_from(cfg, a, payload, evaluator)
                else:
                    rewards[a.name] = train_alone(cfg, a)
        # Centred on what the student gets alone (its local rounds' EMA; before its first local
        # round, the EMA of all its rounds), so a pair's value is its gain over training alone.
        centred = {s: v - alone_baseline.get(s, baseline.get(s, 0.0)) for s, v in rewards.items()}
        paired = {s for _t, s in pairs}
        w = cfg.baseline_weight
        for s, v in rewards.items():
            baseline[s] = v if s not in baseline else (1 - w) * baseline[s] + w * v
            if s not in paired:
                alone_baseline[s] = v if s not in alone_baseline else (1 - w) * alone_baseline[s] + w * v
        if policy is not None:
            policy.observe(centred, pairs)
        record = RoundLog(
            r + 1,
            list(pairs),
            rewards,
            centred,
            sizes,
            kib,
            {a.name: a.val_nll() for a in agents},
            oracle_values=oracle_values,
        )
        if tests and ((r + 1) % cfg.test_every == 0 or r + 1 == cfg.rounds):
            record.own_test, record.global_test = evaluate_tests(world, agents, evaluator)
        rounds.append(record)
        if log is not None:
            own = statistics.fmean(record.own_test.values()) if record.own_test else math.nan
            log(
                f"seed {world.seed} {method} round {r + 1}: own test {own:.3f}, mean reward "
                f"{statistics.fmean(rewards.values()):+.4f}, pairs {pairs}, sizes {sizes}"
            )
    result: dict[str, Any] = {
        "seed": world.seed,
        "method": method,
        "start": {"own_test": own0, "global_test": glob0},
        "rounds": [asdict(x) for x in rounds],
    }
    if keep_agents:
        result["agents"] = agents
    return result


# ----------------------------------------------------------------------------- resume and summary


def result_path(out: Path, seed: int, method: str) -> Path:
    return out / f"seed{seed}-{method}.json"


def run_all(
    cfg: FederationConfig,
    methods: Sequence[str],
    out: Path,
    codec: Codec,
    bases: dict[str, Any],
    evaluator: Evaluator,
    seeds: Sequence[int] | None = None,
    log: LogFn | None = None,
) -> list[dict[str, Any]]:
    """Every (seed, method) not yet saved under ``out`` (one JSON each, written as it finishes),
    then every saved one: a killed run resumes where it stopped."""
    out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    for seed in cfg.seeds if seeds is None else seeds:
        todo = [m for m in methods if not result_path(out, seed, m).exists()]
        if todo:
            world = build_seed_world(cfg, seed, codec, bases)
            world_file = out / f"seed{seed}-world.json"
            if not world_file.exists():
                world_file.write_text(json.dumps(world.rows(), indent=1))
            start = evaluate_tests(world, world.agents, evaluator)
            for m in todo:
                res = run_seed_method(cfg, world, m, evaluator, log, start)
                res["world"] = world.rows()
                tmp = result_path(out, seed, m).with_suffix(".tmp")
                tmp.write_text(json.dumps(res))
                tmp.replace(result_path(out, seed, m))
        results.extend(json.loads(result_path(out, seed, m).read_text()) for m in methods)
    return results


def load_results(out: Path) -> list[dict[str, Any]]:
    return [
        json.loads(p.read_text())
        for p in sorted(out.glob("seed*-*.json"))
        if not p.name.endswith("-world.json")
    ]


def primary(res: Mapping[str, Any]) -> float:
    return statistics.fmean(res["rounds"][-1]["own_test"].values())


def secondary(res: Mapping[str, Any]) -> float:
    return statistics.fmean(res["rounds"][-1]["global_test"].values())


def mean_reward(res: Mapping[str, Any]) -> float:
    return statistics.fmean(v for rec in res["rounds"] for v in rec["rewards"].values())


def summarise(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The pre-registered analysis (see the README).

    Each method is summarised over the seeds it finished, and each comparison (a paired
    difference, knexa / random, a share of the oracle's gain) over the seeds that every method in
    it finished, so that one expensive method (the oracle) run on fewer seeds does not shrink the
    others' comparisons. ``seeds`` is the set every method finished; ``seeds_by_method`` and each
    entry's ``n`` say what a figure rests on.
    """
    by: dict[str, dict[int, Mapping[str, Any]]] = {}
    for res in results:
        by.setdefault(res["method"], {})[int(res["seed"])] = res
    methods = [m for m in METHODS if m in by]

    def common(*names: str) -> list[int]:
        """The seeds every one of `names` finished (none if one of them did not run)."""
        if not all(m in by for m in names):
            return []
        return sorted(set.intersection(*(set(by[m]) for m in names)))

    seeds = common(*methods) if methods else []
    metric_fns = {"primary": primary, "secondary": secondary, "mean_reward": mean_reward}
    out: dict[str, Any] = {
        "seeds": seeds,
        "methods": methods,
        "seeds_by_method": {m: sorted(by[m]) for m in methods},
    }
    for k, f in metric_fns.items():
        out[k] = {m: mean_ci([f(by[m][s]) for s in sorted(by[m])]) for m in methods}
        out[f"{k}_paired"] = {
            f"{a} - {b}": mean_ci([f(by[a][s]) - f(by[b][s]) for s in common(a, b)])
            for a in methods
            for b in methods
            if a != b and b in ("local-only", "random") and common(a, b)
        }
    both = common("knexa", "random")
    if both:
        out["knexa_over_random"] = ratio_ci(
            [primary(by["knexa"][s]) for s in both], [primary(by["random"][s]) for s in both]
        )
    if common("oracle", "local-only"):
        # The pre-registered share is on the primary metric; the oracle maximises the next round's
        # Eq. 3 reward, so the share on that reward is reported beside it. A share is None where
        # the oracle gains nothing over local-only (a ratio to a gap <= 0 means nothing).
        for key, fn in (("share_of_oracle_gain", primary), ("share_of_oracle_reward_gain", mean_reward)):
            share: dict[str, float | None] = {}
            share_seeds: dict[str, list[int]] = {}
            gaps: dict[str, float] = {}
            for m in methods:
                these = common("oracle", "local-only", m)
                if not these:
                    continue
                base = statistics.fmean(fn(by["local-only"][s]) for s in these)
                gap = statistics.fmean(fn(by["oracle"][s]) for s in these) - base
                realised = statistics.fmean(fn(by[m][s]) for s in these) - base
                share[m] = realised / gap if gap > 0 else None
                share_seeds[m] = these
                gaps[m] = gap
            if share:
                out[key] = share
                out[f"{key}_seeds"] = share_seeds
                out[f"{key}_oracle_gap"] = gaps
    for key, name in (("own_test", "curve_primary"), ("global_test", "curve_secondary")):
        curves: dict[str, list[dict[str, float]]] = {}
        for m in methods:
            mine = sorted(by[m])
            start = [statistics.fmean(by[m][s]["start"][key].values()) for s in mine]
            points = [{"round": 0.0, **mean_ci(start)}]
            for i, rec in enumerate(by[m][mine[0]]["rounds"]):
                if rec[key]:
                    vals = [statistics.fmean(by[m][s]["rounds"][i][key].values()) for s in mine]
                    points.append({"round": float(rec["round"]), **mean_ci(vals)})
            curves[m] = points
        out[name] = curves
    return out
