"""An organization's world: the data federation and the pretrained base models it draws from.

`ExperimentConfig` sizes everything (organizations, data per organization, zoo, budgets); the
functions below build the seeded problem suite, the shared tokenizer and the cached pretrained
base models, and the agents on top of them. The organization runtime's real learner and the
federation experiment both start from here, so an organization's data share is the same in both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.agent import Agent
from agent.data.splits import Suite, build_suite, pretraining_corpus
from agent.errors import AgentValueError
from agent.models.tokenizer import Codec, shared_tokenizer
from agent.models.zoo import TINY_ZOO, ZOO, ModelSpec, PretrainConfig, load_or_pretrain
from agent.student import DistillConfig
from agent.teacher import TeacherConfig
from agent.training import Budget


@dataclass(frozen=True)
class ExperimentConfig:
    """Defaults: the benchmark's full run (6 organisations of the tiny zoo, 20 rounds, 5 seeds).

    The tiny zoo is pretrained long enough (600 steps) and warmed up long enough (120 local
    steps) that most organisations pass some public tests of their own specialty, so their
    bundles carry something; the full run then fits in about an hour on a 2-core CPU.
    """

    n_orgs: int = 6
    families: tuple[str, ...] = ("llama-t", "gpt2-t", "neox-t")
    rounds: int = 20
    warmup_steps: int = 120
    budget: Budget = field(default_factory=lambda: Budget(steps=15, batch_size=16, lr=5e-3))
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    alpha: float = 0.1
    train_per_org: int = 160
    val_per_org: int = 16
    transfer_per_category: int = 4
    test_per_category: int = 4
    corpus_size: int = 3000
    vocab_size: int = 1024
    pretrain: PretrainConfig = field(
        default_factory=lambda: PretrainConfig(steps=600, batch_size=16, lr=3e-3)
    )
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    workers: int = 1
    test_every: int = 4  # evaluate the test set every n rounds (and always after the last one)

    def specs(self) -> list[ModelSpec]:
        table = {**ZOO, **TINY_ZOO}
        return [table[f] for f in self.families]


def small_config(**overrides: Any) -> ExperimentConfig:
    """The larger `-s` zoo (about 3x the compute of the tiny one per step)."""
    base: dict[str, Any] = {
        "n_orgs": 4,
        "families": ("llama-s", "gpt2-s", "neox-s"),
        "rounds": 3,
        "warmup_steps": 40,
        "budget": Budget(steps=30, batch_size=16, lr=5e-3),
        "seeds": (0, 1, 2),
        "transfer_per_category": 8,
        "test_per_category": 8,
        "pretrain": PretrainConfig(steps=400, batch_size=16, lr=3e-3),
        "workers": 2,
        "test_every": 1,
    }
    base.update(overrides)
    return ExperimentConfig(**base)


def tiny_config(**overrides: Any) -> ExperimentConfig:
    """A seconds-scale configuration for CI smoke tests (its models barely pass anything)."""
    base: dict[str, Any] = {
        "n_orgs": 3,
        "families": ("llama-t", "gpt2-t", "neox-t"),
        "rounds": 2,
        "warmup_steps": 4,
        "budget": Budget(steps=3, batch_size=8, lr=5e-3),
        "seeds": (0,),
        "train_per_org": 24,
        "val_per_org": 8,
        "transfer_per_category": 2,
        "test_per_category": 2,
        "corpus_size": 300,
        "vocab_size": 512,
        "pretrain": PretrainConfig(steps=10, batch_size=8, lr=3e-3),
        "teacher": TeacherConfig(max_new_tokens=24),
        "test_every": 1,
    }
    base.update(overrides)
    return ExperimentConfig(**base)


def config_for_scale(scale: str, **overrides: Any) -> ExperimentConfig:
    """The configuration a scale name means: ``tiny`` (the benchmark's, the demo's and the org
    runtime's default), ``small`` (the ``-s`` zoo) or ``smoke`` (CI seconds)."""
    table: dict[str, Callable[..., ExperimentConfig]] = {
        "tiny": ExperimentConfig,
        "small": small_config,
        "smoke": tiny_config,
    }
    if scale not in table:
        raise AgentValueError(f"unknown scale {scale!r}: use tiny, small or smoke")
    return table[scale](**overrides)


def build_federation_suite(cfg: ExperimentConfig, seed: int) -> Suite:
    """The federation's data for one seed, sized by `cfg`."""
    return build_suite(
        n_orgs=cfg.n_orgs,
        train_per_org=cfg.train_per_org,
        val_per_org=cfg.val_per_org,
        transfer_per_category=cfg.transfer_per_category,
        test_per_category=cfg.test_per_category,
        alpha=cfg.alpha,
        seed=seed,
    )


def build_world(
    cfg: ExperimentConfig, on_pretrain_step: Callable[[str, int], None] | None = None
) -> tuple[Codec, dict[str, Any]]:
    """Shared tokenizer + cached pretrained base model per family (independent of the seed)."""
    corpus = pretraining_corpus(cfg.corpus_size)
    codec = shared_tokenizer([p.prompt + p.solution for p in corpus], cfg.vocab_size)
    bases: dict[str, Any] = {}
    for spec in cfg.specs():
        cb = None if on_pretrain_step is None else (lambda n, name=spec.name: on_pretrain_step(name, n))
        bases[spec.name], _ = load_or_pretrain(spec, codec, corpus, cfg.pretrain, on_step=cb)
    return codec, bases


def make_agents(
    cfg: ExperimentConfig, suite: Suite, codec: Codec, bases: dict[str, Any], seed: int
) -> list[Agent]:
    specs = cfg.specs()
    return [
        Agent(
            org,
            specs[i % len(specs)],
            codec,
            bases[specs[i % len(specs)].name],
            budget=cfg.budget,
            seed=seed * 100 + i,
        )
        for i, org in enumerate(suite.orgs)
    ]
