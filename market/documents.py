"""Public JSON documents: an organization's `ProfileDoc` and a round's `DecisionRecord`.

Both are canonical JSON (see `exchange.canonical`), so the same content always gives the same
bytes and the same CID, which is what goes on chain. `to_bytes()` writes the canonical form and
`from_bytes()` accepts only that form, after checking the format name, version and every field.

Schema of `ProfileDoc` (format "knexa.profile", version 1), sanitised features only:

    {"format": "knexa.profile", "version": 1,
     "model_family": str, "size_bucket": str,
     "peft": {"method": str, "rank": int, "target_modules": [str, ...] (sorted, unique)},
     "validation": {"pass_at_1": float in [0, 1], "delta": float in [-1, 1]},
     "categories": {"names": [str, ...] (unique),
                    "histogram": [float in [0, 1], ...] (same length, DP-noised, sums to 1 +- 1e-6)},
     "privacy": {"epsilon": float in (0, 1e3], "budget_spent": float in [epsilon, 1e9]}}

Schema of `DecisionRecord` (format "knexa.decision", version 1):

    {"format": "knexa.decision", "version": 1, "round": int,
     "policy": {"name": str, "params": {str: str | int | float | bool}},
     "policy_digest": hex64, "state_digest": hex64,
     "orgs": [address, ...] (ordered, unique),
     "inputs": {"block": int, "profiles": {address: cid},
                "rewards": [{"round", "teacher", "student", "reward": float in [-1, 1]}],
                "excluded": [{"organization": address, "reason": str}] (sorted; omitted when empty)},
     "candidates": [{"teacher", "student", "context": [float], "mean", "bonus", "score"}] (|x| <= 1e12),
     "chosen": [{"teacher", "student"}],
     "merkle": {"leaves": [hex64, ...], "root": hex64 | null}}

Addresses are EIP-55 checksummed, digests are 64 lowercase hex digits without 0x, and every float is
written so that it reads back as the same float64. Every number is range-checked when a document
is built or parsed (finite, within the bounds above); a violation raises `OutOfBoundsError` or
`NonFiniteError`, both `SchemaError`s, so one absurd document is refused before anything computes
with it.

`merkle` holds the leaves of the chosen pairs in order (`chain.merkle.pair_leaf` of round, index,
teacher, student) and their root, which `openRound` commits on chain: replay recomputes the root from
the leaves and compares it with `pairsRoot` of the `RoundOpened` event.

`excluded` names the eligible organizations a round left out and why: `unavailable` (its profile
could not be fetched before the matchmaker's deadline: a fact about that moment, which a replay
takes from the record), `oversized`, or `invalid: <error>` (facts about the content, which a replay
recomputes and compares).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from chain.merkle import merkle_root, pair_leaf
from exchange.canonical import DEFAULT_MAX_DOCUMENT_BYTES, Json, dumps_canonical, loads_canonical
from exchange.cid import normalize_cid
from exchange.errors import FormatError, OutOfBoundsError, SchemaError
from exchange.schema import (
    CanonicalDocument,
    as_address,
    as_cid,
    as_digest,
    as_float,
    as_int,
    as_list,
    as_object,
    as_str,
    check_digest,
    check_float,
    check_format,
    checksum_address,
)

MAX_ROUND = 2**53
MAX_BLOCK = 2**63 - 1
MAX_ORGS = 10_000
#: Declared bounds of the numeric fields that have no natural ones (see the module docstring).
HISTOGRAM_TOLERANCE = 1e-6
MAX_EPSILON = 1e3
MAX_BUDGET = 1e9
MAX_MAGNITUDE = 1e12  # candidate contexts, means, bonuses and scores
MAX_REASON = 256


def _set(instance: object, name: str, value: Any) -> None:
    object.__setattr__(instance, name, value)  # normalising fields of a frozen dataclass


# --- ProfileDoc ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeftSummary:
    rank: int
    target_modules: tuple[str, ...]
    method: str = "lora"

    def __post_init__(self) -> None:
        _set(self, "target_modules", tuple(sorted(set(self.target_modules))))
        check_peft(self.rank, self.target_modules, self.method, "peft")


def check_peft(rank: int, modules: Sequence[str], method: str, path: str) -> None:
    as_int(rank, f"{path}.rank", 1, 65_536)
    as_str(method, f"{path}.method", 32)
    if not 1 <= len(modules) <= 256:
        raise SchemaError(f"{path}.target_modules: 1 to 256 names expected")
    for index, name in enumerate(modules):
        as_str(name, f"{path}.target_modules[{index}]")


@dataclass(frozen=True)
class BaseModelRef:
    """Which base model an organization trains: a name and digests of its weights and tokenizer.

    A teacher reads the student's tokenizer digest to decide between a logit bundle (same
    tokenizer) and a text-only one (different tokenizer)."""

    name: str
    weights: str
    tokenizer: str

    def to_json(self) -> dict[str, Json]:
        return {"name": self.name, "weights": self.weights, "tokenizer": self.tokenizer}

    @classmethod
    def from_json(cls, value: Json) -> BaseModelRef:
        doc = as_object(value, "base_model", ("name", "weights", "tokenizer"))
        return cls(
            as_str(doc["name"], "base_model.name"),
            as_str(doc["weights"], "base_model.weights"),
            as_str(doc["tokenizer"], "base_model.tokenizer"),
        )


@dataclass(frozen=True)
class ProfileDoc(CanonicalDocument):
    """An organization's sanitised profile: what the matchmaker may know about it, nothing more."""

    model_family: str
    size_bucket: str
    peft: PeftSummary
    pass_at_1: float
    pass_at_1_delta: float
    categories: tuple[str, ...]
    histogram: tuple[float, ...]  # DP-noised then clipped and normalised, one value per category
    epsilon: float  # privacy budget used for this histogram
    budget_spent: float  # cumulative epsilon spent by this organization so far
    version: int = 1
    base_model: BaseModelRef | None = None  # absent in profiles of simulated organizations

    FORMAT: ClassVar[str] = "knexa.profile"
    VERSIONS: ClassVar[frozenset[int]] = frozenset({1})

    def __post_init__(self) -> None:
        as_str(self.model_family, "model_family")
        if self.base_model is not None and not isinstance(self.base_model, BaseModelRef):
            raise SchemaError("base_model: expected a BaseModelRef")
        as_str(self.size_bucket, "size_bucket")
        if not isinstance(self.peft, PeftSummary):
            raise SchemaError("peft: expected a PeftSummary")
        _set(self, "pass_at_1", check_float(self.pass_at_1, "pass_at_1", 0.0, 1.0))
        _set(self, "pass_at_1_delta", check_float(self.pass_at_1_delta, "pass_at_1_delta", -1.0, 1.0))
        _set(self, "categories", tuple(self.categories))
        _set(
            self,
            "histogram",
            tuple(check_float(v, f"histogram[{i}]", 0.0, 1.0) for i, v in enumerate(self.histogram)),
        )
        if not 1 <= len(self.categories) <= 4096:
            raise SchemaError("categories: 1 to 4096 names expected")
        for index, name in enumerate(self.categories):
            as_str(name, f"categories[{index}]")
        if len(set(self.categories)) != len(self.categories):
            raise SchemaError("categories: names must be unique")
        if len(self.histogram) != len(self.categories):
            raise SchemaError(
                f"histogram has {len(self.histogram)} values for {len(self.categories)} categories"
            )
        total = math.fsum(self.histogram)  # every value is in [0, 1]: the sum is finite
        if abs(total - 1.0) > HISTOGRAM_TOLERANCE:
            raise OutOfBoundsError(f"histogram sums to {total!r}, not 1 (tolerance {HISTOGRAM_TOLERANCE})")
        _set(self, "epsilon", check_float(self.epsilon, "epsilon", 0.0, MAX_EPSILON))
        if self.epsilon <= 0.0:
            raise OutOfBoundsError("epsilon must be positive")
        _set(self, "budget_spent", check_float(self.budget_spent, "budget_spent", self.epsilon, MAX_BUDGET))
        if self.version not in self.VERSIONS:
            raise SchemaError(f"version {self.version} is not supported")

    def to_json(self) -> dict[str, Json]:
        doc: dict[str, Json] = {
            "format": self.FORMAT,
            "version": self.version,
            "model_family": self.model_family,
            "size_bucket": self.size_bucket,
            "peft": {
                "method": self.peft.method,
                "rank": self.peft.rank,
                "target_modules": list(self.peft.target_modules),
            },
            "validation": {"pass_at_1": self.pass_at_1, "delta": self.pass_at_1_delta},
            "categories": {"names": list(self.categories), "histogram": list(self.histogram)},
            "privacy": {"epsilon": self.epsilon, "budget_spent": self.budget_spent},
        }
        if self.base_model is not None:  # absent rather than null: simulated profiles keep their CIDs
            doc["base_model"] = self.base_model.to_json()
        return doc

    @classmethod
    def from_json(cls, value: Json) -> ProfileDoc:
        keys = (
            "format",
            "version",
            "model_family",
            "size_bucket",
            "peft",
            "validation",
            "categories",
            "privacy",
        )
        doc = as_object(value, "$", keys, optional=("base_model",))
        version = check_format(doc, cls.FORMAT, cls.VERSIONS)
        peft = as_object(doc["peft"], "peft", ("method", "rank", "target_modules"))
        modules = [
            as_str(m, f"peft.target_modules[{i}]") for i, m in enumerate(as_list(peft["target_modules"], "t"))
        ]
        if modules != sorted(set(modules)):
            raise SchemaError("peft.target_modules must be sorted and unique")
        validation = as_object(doc["validation"], "validation", ("pass_at_1", "delta"))
        categories = as_object(doc["categories"], "categories", ("names", "histogram"))
        privacy = as_object(doc["privacy"], "privacy", ("epsilon", "budget_spent"))
        names = as_list(categories["names"], "categories.names", 4096)
        values = as_list(categories["histogram"], "categories.histogram", 4096)
        return cls(
            model_family=as_str(doc["model_family"], "model_family"),
            size_bucket=as_str(doc["size_bucket"], "size_bucket"),
            peft=PeftSummary(
                rank=as_int(peft["rank"], "peft.rank"),
                target_modules=tuple(modules),
                method=as_str(peft["method"], "peft.method"),
            ),
            pass_at_1=as_float(validation["pass_at_1"], "validation.pass_at_1"),
            pass_at_1_delta=as_float(validation["delta"], "validation.delta"),
            categories=tuple(as_str(n, f"categories.names[{i}]") for i, n in enumerate(names)),
            histogram=tuple(as_float(v, f"categories.histogram[{i}]") for i, v in enumerate(values)),
            epsilon=as_float(privacy["epsilon"], "privacy.epsilon"),
            budget_spent=as_float(privacy["budget_spent"], "privacy.budget_spent"),
            version=version,
            base_model=BaseModelRef.from_json(doc["base_model"]) if "base_model" in doc else None,
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES) -> ProfileDoc:
        return cls.from_json(loads_canonical(data, max_bytes=max_bytes))


# --- DecisionRecord -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyRecord:
    """The policy a decision declares: its name and its parameters as plain JSON values."""

    name: str
    params: Mapping[str, Json] = field(default_factory=dict)

    def __post_init__(self) -> None:
        as_str(self.name, "policy.name")
        params: dict[str, Json] = {}
        for key, value in self.params.items():
            as_str(key, "policy.params key")
            params[key] = _param(value, key)
        _set(self, "params", params)


@dataclass(frozen=True)
class DecisionPair:
    teacher: str
    student: str

    def __post_init__(self) -> None:
        _set(self, "teacher", checksum_address(self.teacher, "teacher"))
        _set(self, "student", checksum_address(self.student, "student"))
        if self.teacher == self.student:
            raise SchemaError(f"{self.teacher} cannot teach itself")


@dataclass(frozen=True)
class Candidate:
    """One scored directed pair: its context vector and the bandit's mean, exploration bonus and score."""

    teacher: str
    student: str
    context: tuple[float, ...]
    mean: float
    bonus: float
    score: float

    def __post_init__(self) -> None:
        DecisionPair(self.teacher, self.student)  # validates both addresses and teacher != student
        _set(self, "teacher", checksum_address(self.teacher))
        _set(self, "student", checksum_address(self.student))
        _set(
            self,
            "context",
            tuple(
                check_float(v, f"context[{i}]", -MAX_MAGNITUDE, MAX_MAGNITUDE)
                for i, v in enumerate(self.context)
            ),
        )
        for name in ("mean", "bonus", "score"):
            _set(self, name, check_float(getattr(self, name), name, -MAX_MAGNITUDE, MAX_MAGNITUDE))

    @property
    def pair(self) -> DecisionPair:
        return DecisionPair(self.teacher, self.student)


@dataclass(frozen=True)
class RewardInput:
    """A reward the policy consumed: the gain reported for `round`'s pair teacher -> student."""

    round: int
    teacher: str
    student: str
    reward: float

    def __post_init__(self) -> None:
        as_int(self.round, "rewards.round", 0, MAX_ROUND)
        DecisionPair(self.teacher, self.student)
        _set(self, "teacher", checksum_address(self.teacher))
        _set(self, "student", checksum_address(self.student))
        _set(self, "reward", check_float(self.reward, "reward", -1.0, 1.0))


@dataclass(frozen=True)
class DecisionRecord(CanonicalDocument):
    """One round of the matchmaker: everything needed to recompute and audit its pairing."""

    round: int
    policy: PolicyRecord
    policy_digest: str
    state_digest: str
    orgs: tuple[str, ...]
    profiles: Mapping[str, str]  # org address -> CID of the ProfileDoc consumed
    rewards: tuple[RewardInput, ...]  # rewards consumed from previous rounds, in the order applied
    candidates: tuple[Candidate, ...]
    chosen: tuple[DecisionPair, ...]
    version: int = 1
    inputs_block: int = 0  # the chain block whose state (events up to and including it) was read
    excluded: Mapping[str, str] = field(default_factory=dict)  # eligible org left out -> reason
    leaves: tuple[str, ...] | None = None  # the chosen pairs' Merkle leaves (computed when not given)
    pairs_root: str | None = None  # their root (computed when not given; None for no pairs)

    FORMAT: ClassVar[str] = "knexa.decision"
    VERSIONS: ClassVar[frozenset[int]] = frozenset({1})

    def __post_init__(self) -> None:
        as_int(self.round, "round", 0, MAX_ROUND)
        check_digest(self.policy_digest, "policy_digest")
        check_digest(self.state_digest, "state_digest")
        orgs = tuple(checksum_address(org, f"orgs[{i}]") for i, org in enumerate(self.orgs))
        if len(set(orgs)) != len(orgs) or len(orgs) > MAX_ORGS:
            raise SchemaError("orgs must be unique (and at most 10,000)")
        _set(self, "orgs", orgs)
        members = set(orgs)
        profiles = {
            checksum_address(org, "profiles"): normalize_cid(cid) for org, cid in self.profiles.items()
        }
        if not profiles.keys() <= members:
            raise SchemaError(f"profiles of non-members: {sorted(profiles.keys() - members)}")
        _set(self, "profiles", profiles)
        _set(self, "rewards", tuple(self.rewards))
        for reward in self.rewards:
            if reward.round >= self.round:
                raise SchemaError(f"reward of round {reward.round} consumed in round {self.round}")
        _set(self, "candidates", tuple(self.candidates))
        widths = {len(candidate.context) for candidate in self.candidates}
        if len(widths) > 1:
            raise SchemaError(f"candidate contexts differ in length: {sorted(widths)}")
        scored = set()
        for candidate in self.candidates:
            if not {candidate.teacher, candidate.student} <= members:
                raise SchemaError(f"candidate {candidate.teacher} -> {candidate.student} names a non-member")
            if candidate.pair in scored:
                raise SchemaError(f"candidate {candidate.teacher} -> {candidate.student} appears twice")
            scored.add(candidate.pair)
        _set(self, "chosen", tuple(self.chosen))
        teachers = [pair.teacher for pair in self.chosen]
        students = [pair.student for pair in self.chosen]
        if len(set(teachers)) != len(teachers) or len(set(students)) != len(students):
            raise SchemaError("an organization is chosen twice in the same role")
        for pair in self.chosen:
            if pair not in scored:
                raise SchemaError(f"chosen pair {pair.teacher} -> {pair.student} is not a scored candidate")
        if self.version not in self.VERSIONS:
            raise SchemaError(f"version {self.version} is not supported")
        as_int(self.inputs_block, "inputs.block", 0, MAX_BLOCK)
        excluded = {
            checksum_address(org, "excluded"): as_str(reason, f"excluded.{org}.reason", MAX_REASON)
            for org, reason in self.excluded.items()
        }
        if excluded.keys() & members:
            raise SchemaError(f"excluded organizations in the round: {sorted(excluded.keys() & members)}")
        if len(excluded) > MAX_ORGS:
            raise SchemaError("at most 10,000 excluded organizations")
        _set(self, "excluded", dict(sorted(excluded.items())))
        if self.leaves is None:
            computed = [pair_leaf(self.round, i, p.teacher, p.student) for i, p in enumerate(self.chosen)]
            _set(self, "leaves", tuple(leaf.hex() for leaf in computed))
            if self.pairs_root is None and computed:
                _set(self, "pairs_root", merkle_root(computed).hex())
        _set(self, "leaves", tuple(check_digest(leaf, "merkle.leaves") for leaf in self.leaves or ()))
        if self.pairs_root is not None:
            check_digest(self.pairs_root, "merkle.root")

    def leaves_root(self) -> str | None:
        """The root of the recorded leaves (what replay compares with the round's `pairsRoot`)."""
        leaves = [bytes.fromhex(leaf) for leaf in self.leaves or ()]
        return merkle_root(leaves).hex() if leaves else None

    def to_json(self) -> dict[str, Json]:
        inputs: dict[str, Json] = {
            "block": self.inputs_block,
            "profiles": dict(self.profiles),
            "rewards": [
                {"round": r.round, "teacher": r.teacher, "student": r.student, "reward": r.reward}
                for r in self.rewards
            ],
        }
        if self.excluded:  # omitted when empty: records without exclusions keep their bytes and CIDs
            inputs["excluded"] = [
                {"organization": org, "reason": reason} for org, reason in self.excluded.items()
            ]
        return {
            "format": self.FORMAT,
            "version": self.version,
            "round": self.round,
            "policy": {"name": self.policy.name, "params": dict(self.policy.params)},
            "policy_digest": self.policy_digest,
            "state_digest": self.state_digest,
            "orgs": list(self.orgs),
            "inputs": inputs,
            "candidates": [
                {
                    "teacher": c.teacher,
                    "student": c.student,
                    "context": list(c.context),
                    "mean": c.mean,
                    "bonus": c.bonus,
                    "score": c.score,
                }
                for c in self.candidates
            ],
            "chosen": [{"teacher": p.teacher, "student": p.student} for p in self.chosen],
            "merkle": {"leaves": list(self.leaves or ()), "root": self.pairs_root},
        }

    @classmethod
    def from_json(cls, value: Json) -> DecisionRecord:
        keys = ("format", "version", "round", "policy", "policy_digest", "state_digest", "orgs", "inputs")
        doc = as_object(value, "$", (*keys, "candidates", "chosen", "merkle"))
        version = check_format(doc, cls.FORMAT, cls.VERSIONS)
        policy = as_object(doc["policy"], "policy", ("name", "params"))
        params = as_object(policy["params"], "policy.params", (), optional=_keys(policy["params"]))
        inputs = as_object(doc["inputs"], "inputs", ("block", "profiles", "rewards"), ("excluded",))
        excluded: dict[str, str] = {}
        for i, item in enumerate(as_list(inputs.get("excluded", []), "inputs.excluded", MAX_ORGS)):
            entry = as_object(item, f"inputs.excluded[{i}]", ("organization", "reason"))
            org = as_address(entry["organization"], f"inputs.excluded[{i}].organization")
            if org in excluded:
                raise SchemaError(f"inputs.excluded: {org} appears twice")
            excluded[org] = as_str(entry["reason"], f"inputs.excluded[{i}].reason", MAX_REASON)
        if "excluded" in inputs and (not excluded or list(excluded) != sorted(excluded)):
            raise SchemaError("inputs.excluded must be non-empty and sorted by address when present")
        profiles = as_object(inputs["profiles"], "inputs.profiles", (), optional=_keys(inputs["profiles"]))
        rewards = []
        for i, item in enumerate(as_list(inputs["rewards"], "inputs.rewards")):
            entry = as_object(item, f"inputs.rewards[{i}]", ("round", "teacher", "student", "reward"))
            rewards.append(
                RewardInput(
                    round=as_int(entry["round"], f"inputs.rewards[{i}].round"),
                    teacher=as_address(entry["teacher"], f"inputs.rewards[{i}].teacher"),
                    student=as_address(entry["student"], f"inputs.rewards[{i}].student"),
                    reward=as_float(entry["reward"], f"inputs.rewards[{i}].reward"),
                )
            )
        candidates = []
        for i, item in enumerate(as_list(doc["candidates"], "candidates")):
            path = f"candidates[{i}]"
            entry = as_object(item, path, ("teacher", "student", "context", "mean", "bonus", "score"))
            candidates.append(
                Candidate(
                    teacher=as_address(entry["teacher"], f"{path}.teacher"),
                    student=as_address(entry["student"], f"{path}.student"),
                    context=tuple(
                        as_float(v, f"{path}.context[{j}]")
                        for j, v in enumerate(as_list(entry["context"], f"{path}.context", 4096))
                    ),
                    mean=as_float(entry["mean"], f"{path}.mean"),
                    bonus=as_float(entry["bonus"], f"{path}.bonus"),
                    score=as_float(entry["score"], f"{path}.score"),
                )
            )
        chosen = []
        for i, item in enumerate(as_list(doc["chosen"], "chosen")):
            entry = as_object(item, f"chosen[{i}]", ("teacher", "student"))
            chosen.append(
                DecisionPair(
                    as_address(entry["teacher"], f"chosen[{i}].teacher"),
                    as_address(entry["student"], "student"),
                )
            )
        merkle = as_object(doc["merkle"], "merkle", ("leaves", "root"))
        leaves = tuple(
            as_digest(leaf, f"merkle.leaves[{i}]")
            for i, leaf in enumerate(as_list(merkle["leaves"], "merkle.leaves", 1 << 16))
        )
        root = None if merkle["root"] is None else as_digest(merkle["root"], "merkle.root")
        return cls(
            round=as_int(doc["round"], "round", 0, MAX_ROUND),
            policy=PolicyRecord(
                as_str(policy["name"], "policy.name"), {k: _param(v, k) for k, v in params.items()}
            ),
            policy_digest=as_digest(doc["policy_digest"], "policy_digest"),
            state_digest=as_digest(doc["state_digest"], "state_digest"),
            orgs=tuple(
                as_address(o, f"orgs[{i}]") for i, o in enumerate(as_list(doc["orgs"], "orgs", MAX_ORGS))
            ),
            profiles={
                as_address(k, "inputs.profiles key"): as_cid(v, f"inputs.profiles.{k}")
                for k, v in profiles.items()
            },
            rewards=tuple(rewards),
            candidates=tuple(candidates),
            chosen=tuple(chosen),
            version=version,
            inputs_block=as_int(inputs["block"], "inputs.block", 0, MAX_BLOCK),
            excluded=excluded,
            leaves=leaves,
            pairs_root=root,
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES) -> DecisionRecord:
        return cls.from_json(loads_canonical(data, max_bytes=max_bytes))


def _keys(value: Json) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, dict) else ()


def _param(value: Json, key: str) -> Json:
    """A policy parameter: any JSON value the canonical encoding accepts (finite numbers only)."""
    if isinstance(value, float):
        return check_float(value, f"policy.params.{key}")
    try:
        loads_canonical(dumps_canonical(value))
    except FormatError as error:
        raise SchemaError(f"policy.params.{key}: {error}") from None
    return value
