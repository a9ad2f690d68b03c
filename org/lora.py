"""A real learner for the organization runtime: a tiny base LM + LoRA, private code problems, Pass@1.

The organization's private data is its share of the seeded code-problem federation (`build_suite`),
its base model comes from the cached zoo (pretrained once on the public corpus), and its adapter
lives in its home: trained locally once on first start (warm-up), then changed only by distilling
the bundles it receives. Validation Pass@1 is measured in the sandbox before and after each
distillation; the difference is the gain it reports.

Privacy: the category histogram in the profile is released once with differential privacy and then
re-published as is (post-processing costs no budget); the spent budget is recorded in the profile.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from agent.agent import Agent
from agent.data.templates import CATEGORIES
from agent.models.zoo import n_params
from agent.payload import PayloadError
from agent.sandbox import Evaluator
from agent.world import ExperimentConfig, build_federation_suite, build_world, config_for_scale
from exchange.canonical import Json
from market.bundles import AdapterBundle, BaseModelId, KnowledgeBundle
from market.documents import PeftSummary, ProfileDoc
from market.privacy import PrivacyAccountant, release_histogram, size_bucket_of
from org.bridge import bundle_to_payload, payload_to_bundle
from org.errors import LearnerRefusedError, OrgValueError
from org.learners import LearnResult


@dataclass
class LearnerMemory:
    """What the learner keeps between runs (besides the adapter weights)."""

    val: float
    previous_val: float
    histogram: list[float]
    epsilon: float
    rounds_learnt: int = 0

    @classmethod
    def load(cls, path: Path) -> LearnerMemory | None:
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def experiment_config(settings: dict[str, Any]) -> ExperimentConfig:
    """`scale`: `tiny` (the federation benchmark's models: seconds per round) or `small` (the `-s` zoo)."""
    return config_for_scale(str(settings.get("scale", "tiny")), n_orgs=int(settings.get("n_orgs", 3)))


class LoraLearner:
    """The `Learner` of an organization with a real model (see the module docstring)."""

    def __init__(self, name: str, home: Path, index: int, config: ExperimentConfig, data_seed: int) -> None:
        if not 0 <= index < config.n_orgs:
            raise OrgValueError(f"data index {index} outside the federation of {config.n_orgs} organizations")
        torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
        self.name = name
        self.home = home
        self.config = config
        self.suite = build_federation_suite(config, data_seed)
        self.transfer = {item.pid: item for item in self.suite.transfer}
        self.codec, bases = build_world(config)
        specs = config.specs()
        self.spec = specs[index % len(specs)]
        self.agent = Agent(
            self.suite.orgs[index],
            self.spec,
            self.codec,
            bases[self.spec.name],
            budget=config.budget,
            seed=index,
        )
        self.evaluator = Evaluator(workers=config.workers)
        self._adapter_path = home / "adapter.safetensors"
        self._memory_path = home / "learner.json"
        memory = LearnerMemory.load(self._memory_path)
        if memory is None or not self._adapter_path.exists():
            memory = self._first_start(data_seed, index)
        else:
            self._load_adapter()
        self.memory = memory

    @classmethod
    def from_settings(cls, name: str, home: Path, settings: dict[str, Any]) -> LoraLearner:
        index = settings.get("index")
        if index is None:
            digits = name.rsplit("-", 1)[-1]
            if not digits.isdigit():
                raise OrgValueError("a lora learner needs its data index: name it org-N or set learner.index")
            index = int(digits)
        return cls(name, home, int(index), experiment_config(settings), int(settings.get("seed", 0)))

    # ------------------------------------------------------------------ persistence

    def _first_start(self, data_seed: int, index: int) -> LearnerMemory:
        self.agent.train_local(self.config.warmup_steps)
        val = self.agent.validate(self.evaluator)
        counts = self.agent.org.category_counts()
        release = release_histogram(
            {category: counts.get(category, 0) for category in CATEGORIES},
            rng=np.random.default_rng([data_seed, index, 0xD9]),
            accountant=PrivacyAccountant(),
            categories=CATEGORIES,
            epsilon=1.0,
        )
        memory = LearnerMemory(val, val, list(release.histogram), release.epsilon_spent_total)
        self._save(memory)
        return memory

    def _save(self, memory: LearnerMemory) -> None:
        weights = {key: value.detach().cpu().numpy() for key, value in self.agent.adapter_state().items()}
        save_file(weights, str(self._adapter_path))
        memory.save(self._memory_path)

    def _load_adapter(self) -> None:
        weights = {key: torch.from_numpy(value) for key, value in load_file(str(self._adapter_path)).items()}
        self.agent.load_adapter_state(weights)

    # ------------------------------------------------------------------ the Learner protocol

    def profile(self) -> ProfileDoc:
        adapter = self.agent.adapter_config()
        return ProfileDoc(
            model_family=self.spec.family,
            size_bucket=str(size_bucket_of(n_params(self.agent.model))),
            peft=PeftSummary(rank=adapter.r, target_modules=adapter.target_modules),
            pass_at_1=self.memory.val,
            pass_at_1_delta=max(-1.0, min(1.0, self.memory.val - self.memory.previous_val)),
            categories=CATEGORIES,
            histogram=tuple(self.memory.histogram),
            epsilon=self.memory.epsilon,
            budget_spent=self.memory.epsilon,
        )

    def teach(self, round_id: int, teacher: str, student: str) -> KnowledgeBundle:
        payload = self.agent.teach(self.suite.transfer, self.evaluator, self.config.teacher)
        try:
            return payload_to_bundle(payload, round_id, teacher, student, self.codec.vocab_size)
        except PayloadError as error:
            raise LearnerRefusedError(str(error)) from error

    def learn(self, bundle: KnowledgeBundle, teacher_name: str) -> LearnResult:
        try:
            payload = bundle_to_payload(bundle, self.transfer)
        except PayloadError as error:
            raise LearnerRefusedError(f"the bundle does not fit this transfer set: {error}") from error
        report = self.agent.learn(payload, self.evaluator, self.config.distill, val_before=self.memory.val)
        self.memory.previous_val, self.memory.val = self.memory.val, report.val_after
        self.memory.rounds_learnt += 1
        self._save(self.memory)
        return LearnResult(report.gain, self.adapter_bundle().to_bytes(), f"{report.mode} distillation")

    def adapter_bundle(self) -> AdapterBundle:
        weights = {key: value.detach().cpu().numpy() for key, value in self.agent.adapter_state().items()}
        adapter = self.agent.adapter_config()
        config: dict[str, Json] = {
            "peft_type": adapter.peft_type,
            "r": adapter.r,
            "lora_alpha": adapter.lora_alpha,
            "target_modules": [str(name) for name in adapter.target_modules],
            "fan_in_fan_out": adapter.fan_in_fan_out,
        }
        return AdapterBundle(BaseModelId(self.spec.name, self.codec.identity), config, weights)

    @property
    def rounds_learnt(self) -> int:
        return self.memory.rounds_learnt
