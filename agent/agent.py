"""One organisation's agent: frozen base + its own LoRA adapter + private data.

Nothing leaves an agent except bundle payloads (:meth:`Agent.teach`) and, on request,
adapter weights. The runtime (and later the exchange layer) calls :meth:`Agent.teach`
for a teacher and :meth:`Agent.learn` for a student; :meth:`Agent.learn` reports the
validation Pass@1 gain that becomes the matchmaker's reward.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from peft import LoraConfig
from transformers import PreTrainedModel

from agent.data.problems import Problem
from agent.data.splits import OrgData, TransferItem
from agent.evaluate import PassAt1, pass_at_1
from agent.generation import completion_nll
from agent.models.tokenizer import Codec
from agent.models.zoo import ModelSpec, attach_lora
from agent.payload import BundlePayload
from agent.sandbox import Evaluator
from agent.student import DistillConfig, distil
from agent.teacher import TeacherConfig, make_bundle
from agent.training import Budget, encode_example, make_optimizer, train_steps


@dataclass
class LearnReport:
    teacher: str
    mode: str
    bundle_examples: int
    val_before: float
    val_after: float
    losses: list[float] = field(default_factory=list)
    nll_before: float = float("nan")  # mean per-token NLL of the validation references
    nll_after: float = float("nan")

    @property
    def gain(self) -> float:
        """The validation Pass@1 gain."""
        return self.val_after - self.val_before

    @property
    def loss_reduction(self) -> float:
        """``L_pre - L_post`` of the paper's Eq. 3 (positive when the round helped)."""
        return self.nll_before - self.nll_after


@dataclass(frozen=True)
class AdapterConfig:
    """The fields of a LoRA adapter's peft configuration that travel with its weights."""

    peft_type: str
    r: int
    lora_alpha: int
    target_modules: tuple[str, ...]
    fan_in_fan_out: bool


class Agent:
    def __init__(
        self,
        org: OrgData,
        spec: ModelSpec,
        codec: Codec,
        base: PreTrainedModel,
        *,
        budget: Budget,
        seed: int,
        logit_noise: float = 0.0,
        eval_new_tokens: int = 64,
    ) -> None:
        self.org = org
        self.eval_new_tokens = eval_new_tokens  # the generation length of validation
        self.spec = spec
        self.codec = codec
        self.budget = budget
        self.seed = seed
        self.model = attach_lora(copy.deepcopy(base), spec, seed)
        self.optimizer = make_optimizer(self.model, budget.lr)
        self.train_examples = [encode_example(codec, p.prompt, p.solution, spec.max_len) for p in org.train]
        self.val_examples = [encode_example(codec, p.prompt, p.solution, spec.max_len) for p in org.val]
        self.logit_noise = logit_noise  # > 0 for a low-quality participant's noisy bundles
        self.steps_done = 0
        self._val_cache: tuple[int, float] | None = None  # (steps_done, Pass@1) of the last validation
        self._nll_cache: tuple[int, float] | None = None  # (steps_done, NLL) of the last one

    @property
    def name(self) -> str:
        return self.org.org

    def _step_seed(self) -> int:
        return self.seed * 1_000_003 + self.steps_done

    def train_local(self, steps: int | None = None) -> list[float]:
        n = self.budget.steps if steps is None else steps
        losses = train_steps(
            self.model,
            self.train_examples,
            steps=n,
            batch_size=self.budget.batch_size,
            optimizer=self.optimizer,
            pad_id=self.codec.pad_id,
            seed=self._step_seed(),
        )
        self.steps_done += n
        return losses

    def teach(
        self, transfer: Sequence[TransferItem], evaluator: Evaluator, cfg: TeacherConfig | None = None
    ) -> BundlePayload:
        cfg = cfg or TeacherConfig()
        if self.logit_noise > 0:
            cfg = replace(cfg, logit_noise=self.logit_noise)
        return make_bundle(self.model, self.codec, self.name, transfer, evaluator, cfg)

    def val_nll(self) -> float:
        """Mean per-token NLL of the private validation reference solutions (cached per state)."""
        if self._nll_cache is not None and self._nll_cache[0] == self.steps_done:
            return self._nll_cache[1]
        nll = completion_nll(self.model, self.val_examples, self.codec.pad_id)
        self._nll_cache = (self.steps_done, nll)
        return nll

    def validate(self, evaluator: Evaluator) -> float:
        """Validation Pass@1, measured once per model state (greedy decoding makes it a function
        of the weights, which only change through this agent's own optimizer steps)."""
        if self._val_cache is not None and self._val_cache[0] == self.steps_done:
            return self._val_cache[1]
        rate = self.evaluate(self.org.val, evaluator).rate
        self._val_cache = (self.steps_done, rate)
        return rate

    def evaluate(self, problems: Sequence[Problem], evaluator: Evaluator) -> PassAt1:
        return pass_at_1(
            self.model,
            self.codec,
            problems,
            evaluator,
            max_new_tokens=self.eval_new_tokens,
            max_len=self.spec.max_len,
        )

    def learn(
        self,
        payload: BundlePayload,
        evaluator: Evaluator,
        cfg: DistillConfig | None = None,
        *,
        val_before: float | None = None,
        pass1: bool = True,
    ) -> LearnReport:
        """Distil ``payload`` for one round's budget; report validation Pass@1 (unless ``pass1`` is
        false: NaN, which saves two decodes of the validation set) and NLL before and after."""
        nll_before = self.val_nll()
        before = (self.validate(evaluator) if val_before is None else val_before) if pass1 else float("nan")
        stats = distil(
            self.model,
            self.codec,
            payload,
            self.train_examples,
            steps=self.budget.steps,
            batch_size=self.budget.batch_size,
            optimizer=self.optimizer,
            cfg=cfg or DistillConfig(),
            seed=self._step_seed(),
            max_len=self.spec.max_len,
        )
        self.steps_done += self.budget.steps
        after = self.validate(evaluator) if pass1 else float("nan")
        return LearnReport(
            payload.teacher,
            stats.mode,
            stats.bundle_examples,
            before,
            after,
            stats.losses,
            nll_before,
            self.val_nll(),
        )

    def adapter_config(self) -> AdapterConfig:
        """The LoRA adapter's configuration as peft itself holds it (never retyped from the spec)."""
        config = self.model.peft_config["default"]
        assert isinstance(config, LoraConfig)
        targets = config.target_modules
        names = (targets,) if isinstance(targets, str) else tuple(sorted(str(name) for name in targets or ()))
        return AdapterConfig(
            peft_type=str(getattr(config.peft_type, "value", config.peft_type)),
            r=int(config.r),
            lora_alpha=int(config.lora_alpha),
            target_modules=names,
            fan_in_fan_out=bool(config.fan_in_fan_out),
        )

    def adapter_state(self) -> dict[str, torch.Tensor]:
        """The LoRA weights only (what an ``AdapterBundle`` would carry)."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items() if "lora_" in k}

    def load_adapter_state(self, weights: dict[str, torch.Tensor]) -> None:
        """Replace the LoRA weights (a saved adapter); they must all belong to this model."""
        unknown = [key for key in weights if key not in self.model.state_dict()]
        if unknown:
            raise ValueError(f"the adapter does not fit this model: {unknown[:2]}")
        self.model.load_state_dict(weights, strict=False)
        self._val_cache = None
        self._nll_cache = None

    def clone(self) -> Agent:
        """An independent copy (adapter, optimizer state, counters) for branching experiments."""
        return copy.deepcopy(self)
