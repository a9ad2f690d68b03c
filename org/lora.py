"""A real learner for the organization runtime: a base LM + LoRA, private code problems, Pass@1.

Two ways to configure it (both run the benchmark's code: `agent.Agent`'s LoRA training at a fixed
step budget, bundles, distillation and the sandboxed evaluation):
- the organization's own files (`knexa org init --model PATH_OR_ZOO --data FILE.jsonl`): its base
  model (`org.model`), its problems (`org.data`, copied into its home), its validation set, and
  the public transfer set (`--transfer`, else the seeded federation's);
- a share of the seeded code-problem federation (`--index`), on a cached zoo model.
Its adapter lives in its home: trained locally once on first start (warm-up), then changed only by
distilling the bundles it receives. The gain it reports is the paper's Eq. 3 reward
(`agent.reward.eq3_reward`): the reduction of its mean per-token NLL of its validation reference
solutions, less a charge for the bundle's size; validation Pass@1 is measured in the sandbox before
and after each distillation too, and kept in its log.

Tokenizers: the profile declares the base model's weights and tokenizer digests. A teacher sends
top-k logits only to a student with its own tokenizer and text-only bundles otherwise; the student
distils logits only from a bundle made with its tokenizer. Both choices are logged.

Privacy: the category histogram in the profile is released once with differential privacy and then
re-published as is (post-processing costs no budget); the spent budget is recorded in the profile.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from agent.agent import Agent
from agent.data.splits import OrgData, TransferItem
from agent.data.templates import CATEGORIES
from agent.models.tokenizer import Codec
from agent.models.zoo import ModelSpec, n_params
from agent.payload import PayloadError
from agent.reward import eq3_reward
from agent.sandbox import Evaluator
from agent.student import resolve_mode
from agent.teacher import TeacherConfig
from agent.training import Budget
from agent.world import ExperimentConfig, build_federation_suite, build_world, config_for_scale
from exchange.canonical import Json
from market.bundles import AdapterBundle, BaseModelId, KnowledgeBundle
from market.documents import BaseModelRef, PeftSummary, ProfileDoc
from market.privacy import PrivacyAccountant, release_histogram, size_bucket_of
from org.bridge import bundle_to_payload, payload_to_bundle
from org.data import parse_problems, parse_transfer
from org.errors import LearnerRefusedError, OrgValueError
from org.learners import LearnResult
from org.model import digest_state, load_base, model_identity

log = logging.getLogger(__name__)

DATA_FILE = "data.jsonl"
VALIDATION_FILE = "validation.jsonl"
TRANSFER_FILE = "transfer.jsonl"


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


def own_config(settings: dict[str, Any], spec: ModelSpec) -> ExperimentConfig:
    """The step budget and generation lengths of an organization with its own model and data."""
    base = experiment_config({"scale": settings.get("scale", "tiny"), "n_orgs": 1})
    max_new = int(settings.get("max_new_tokens", base.teacher.max_new_tokens))
    return replace(
        base,
        n_orgs=1,
        warmup_steps=int(settings.get("warmup_steps", base.warmup_steps)),
        budget=Budget(
            steps=int(settings.get("steps", base.budget.steps)),
            batch_size=int(settings.get("batch_size", base.budget.batch_size)),
            lr=float(settings.get("lr", base.budget.lr)),
        ),
        teacher=replace(base.teacher, max_new_tokens=max_new, max_len=spec.max_len),
    )


def split_own_data(home: Path) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(train, validation) from the organization's files: `validation.jsonl` when given, else the
    last fifth of `data.jsonl` (at least one problem); problems without a solution only validate."""
    problems = parse_problems(home / DATA_FILE)
    if (home / VALIDATION_FILE).exists():
        val = parse_problems(home / VALIDATION_FILE)
        train = problems
    else:
        n_val = max(1, len(problems) // 5) if len(problems) > 1 else 0
        train, val = problems[: len(problems) - n_val], problems[len(problems) - n_val :]
    unsolved = tuple(p for p in train if not p.solution)
    train = tuple(p for p in train if p.solution)
    val = tuple(val) + unsolved
    if not train:
        raise OrgValueError(f"{home / DATA_FILE}: no problem with a reference solution to train on")
    if not val:
        raise OrgValueError(f"{home / DATA_FILE}: no validation problem (give --validation FILE.jsonl)")
    return train, val


class LoraLearner:
    """The `Learner` of an organization with a real model (see the module docstring)."""

    def __init__(
        self,
        name: str,
        home: Path,
        *,
        org: OrgData,
        transfer: tuple[TransferItem, ...],
        spec: ModelSpec,
        codec: Codec,
        base: Any,
        base_ref: BaseModelRef,
        config: ExperimentConfig,
        seed: int,
        privacy_seed: tuple[int, int],
        eval_new_tokens: int = 64,
    ) -> None:
        torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
        self.name = name
        self.home = home
        self.config = config
        self.transfer_items = transfer
        self.transfer = {item.pid: item for item in transfer}
        self.codec = codec
        self.spec = spec
        self.base_ref = base_ref
        self.agent = Agent(
            org, spec, codec, base, budget=config.budget, seed=seed, eval_new_tokens=eval_new_tokens
        )
        self.evaluator = Evaluator(workers=config.workers)
        self._adapter_path = home / "adapter.safetensors"
        self._memory_path = home / "learner.json"
        memory = LearnerMemory.load(self._memory_path)
        if memory is None or not self._adapter_path.exists():
            memory = self._first_start(*privacy_seed)
        else:
            self._load_adapter()
        self.memory = memory

    @classmethod
    def from_settings(cls, name: str, home: Path, settings: dict[str, Any]) -> LoraLearner:
        if "model" in settings:
            return cls.from_own_files(name, home, settings)
        index = settings.get("index")
        if index is None:
            digits = name.rsplit("-", 1)[-1]
            if not digits.isdigit():
                raise OrgValueError(
                    "a lora learner needs its data: give --model and --data, or --index N "
                    "(a share of the seeded federation)"
                )
            index = int(digits)
        return cls.from_federation(
            name, home, int(index), experiment_config(settings), int(settings.get("seed", 0))
        )

    @classmethod
    def from_federation(
        cls, name: str, home: Path, index: int, config: ExperimentConfig, data_seed: int
    ) -> LoraLearner:
        """Organization `index` of the seeded federation, on the zoo model of its family."""
        if not 0 <= index < config.n_orgs:
            raise OrgValueError(f"data index {index} outside the federation of {config.n_orgs} organizations")
        suite = build_federation_suite(config, data_seed)
        codec, bases = build_world(config)
        specs = config.specs()
        spec = specs[index % len(specs)]
        ref = BaseModelRef(spec.name, digest_state(bases[spec.name]), codec.identity)
        return cls(
            name,
            home,
            org=suite.orgs[index],
            transfer=suite.transfer,
            spec=spec,
            codec=codec,
            base=bases[spec.name],
            base_ref=ref,
            config=config,
            seed=index,
            privacy_seed=(data_seed, index),
        )

    @classmethod
    def from_own_files(cls, name: str, home: Path, settings: dict[str, Any]) -> LoraLearner:
        """The organization's own model and problems (what `knexa org init --model --data` set up)."""
        base = load_base(
            str(settings["model"]),
            lora_rank=settings.get("lora_rank"),
            max_len=settings.get("max_len"),
        )
        train, val = split_own_data(home)
        seed = int(settings.get("seed", 0))
        data_seed = int(settings.get("transfer_seed", 0))
        transfer_file = home / TRANSFER_FILE
        if transfer_file.exists():
            transfer = parse_transfer(transfer_file)
        else:
            transfer = build_federation_suite(experiment_config({"scale": "tiny"}), data_seed).transfer
        config = own_config(settings, base.spec)
        ref = BaseModelRef(base.name, base.weights_digest, base.tokenizer_digest)
        log.info(
            "%s: base model %s (weights %s, tokenizer %s, %s prompts); "
            "%d training and %d validation problems",
            name,
            base.source,
            base.weights_digest[:16],
            base.tokenizer_digest,
            base.prompt_format,
            len(train),
            len(val),
        )
        return cls(
            name,
            home,
            org=OrgData(name, {}, tuple(train), tuple(val)),
            transfer=transfer,
            spec=base.spec,
            codec=base.codec,
            base=base.model,
            base_ref=ref,
            config=config,
            seed=seed,
            privacy_seed=(seed, 0),
            # validation generates as long as the teacher does when the organization sets a length
            eval_new_tokens=int(settings.get("max_new_tokens", 64)),
        )

    # ------------------------------------------------------------------ persistence

    def _first_start(self, data_seed: int, index: int) -> LearnerMemory:
        """Warm up the fresh adapter on the private training problems, measure, release the histogram."""
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
            base_model=self.base_ref,
        )

    def bundle_mode(self, student_tokenizer: str | None) -> str:
        """`logits` for a student with this tokenizer (or an unknown one: it checks itself), else `text`."""
        if student_tokenizer is None or student_tokenizer == self.codec.identity:
            return "logits"
        return "text"

    def teach(
        self, round_id: int, teacher: str, student: str, *, student_tokenizer: str | None = None
    ) -> KnowledgeBundle:
        mode = self.bundle_mode(student_tokenizer)
        if mode == "text":
            log.info(
                "round %d: text-only bundle for %s: its tokenizer %s differs from ours (%s)",
                round_id,
                student,
                student_tokenizer,
                self.codec.identity,
            )
        else:
            log.info("round %d: logit bundle for %s (tokenizer %s)", round_id, student, self.codec.identity)
        cfg: TeacherConfig = replace(self.config.teacher, mode=mode)  # type: ignore[arg-type]
        payload = self.agent.teach(self.transfer_items, self.evaluator, cfg)
        try:
            return payload_to_bundle(payload, round_id, teacher, student, self.codec.vocab_size)
        except PayloadError as error:
            raise LearnerRefusedError(str(error)) from error

    def learn(self, bundle: KnowledgeBundle, teacher_name: str) -> LearnResult:
        try:
            payload = bundle_to_payload(bundle, self.transfer)
        except PayloadError as error:
            raise LearnerRefusedError(f"the bundle does not fit this transfer set: {error}") from error
        mode = resolve_mode(payload, self.codec, "auto")
        same = payload.tokenizer_id == self.codec.identity
        why = (
            "same tokenizer"
            if same
            else f"tokenizer {payload.tokenizer_id} differs from ours ({self.codec.identity})"
        )
        if payload.has_logits and not same:
            why += ": its logits are ignored"
        log.info("round %d: %s distillation from %s (%s)", bundle.round, mode, teacher_name, why)
        report = self.agent.learn(payload, self.evaluator, self.config.distill, val_before=self.memory.val)
        self.memory.previous_val, self.memory.val = self.memory.val, report.val_after
        self.memory.rounds_learnt += 1
        self._save(self.memory)
        kib = payload.nbytes() / 1024
        reward = eq3_reward(report.nll_before, report.nll_after, kib)
        log.info(
            "round %d: Eq. 3 reward %+.5f (validation NLL %.4f -> %.4f, bundle %.1f KiB); "
            "validation Pass@1 %.3f -> %.3f (%+.3f, kept in this log, not reported)",
            bundle.round,
            reward,
            report.nll_before,
            report.nll_after,
            kib,
            report.val_before,
            report.val_after,
            report.gain,
        )
        return LearnResult(
            reward,
            self.adapter_bundle().to_bytes(),
            f"{report.mode} distillation ({why})",
            pass1_gain=report.gain,
            nll_before=report.nll_before,
            nll_after=report.nll_after,
            bundle_kib=kib,
        )

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
        revision = model_identity(self.base_ref.weights, self.base_ref.tokenizer)
        return AdapterBundle(BaseModelId(self.base_ref.name, revision), config, weights)

    @property
    def rounds_learnt(self) -> int:
        return self.memory.rounds_learnt
