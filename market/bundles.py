"""Bundle formats: a teacher's `KnowledgeBundle` and an `AdapterBundle` of LoRA weights.

Both are safetensors files (never pickle): the tensors, plus one metadata entry `knexa` holding a
canonical JSON header that names the format and version and carries everything that is not a tensor.
Reading one checks, before any tensor is trusted: the size limit, that it is not a pickle or a torch
archive, the format name and version, the exact set of tensors with their dtypes and shapes, and that
every number is finite.

`KnowledgeBundle` (format "knexa.knowledge", version 1) carries a teacher's predictions on the public
transfer set for one student. Per prompt, either or both of:

- top-k next-token predictions at each position of a token sequence, stored flat over all prompts
  (`input_ids` [N], `topk_ids` [N, k], `topk_logprobs` [N, k]) with `offsets` [P + 1] marking where
  each prompt's positions start, as in a CSR matrix;
- a generated completion (text).

`AdapterBundle` (format "knexa.adapter", version 1) carries LoRA weights, the peft config (JSON) and the
identity of the base model they apply to.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from exchange.canonical import Json, dumps_canonical, loads_canonical
from exchange.errors import (
    FormatError,
    NonFiniteError,
    OversizedError,
    SchemaError,
    ShapeError,
    UnknownFormatError,
    UnsafePayloadError,
)
from exchange.schema import (
    as_address,
    as_int,
    as_list,
    as_object,
    as_str,
    check_format,
    checksum_address,
)
from exchange.sealing import looks_like_pickle

META_KEY = "knexa"
Array = npt.NDArray[Any]

ID_DTYPES = (np.dtype(np.uint16), np.dtype(np.int32), np.dtype(np.int64))
FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32))
MAX_HEADER_BYTES = 16 << 20
LOGPROB_TOLERANCE = 1e-3  # log-probabilities are <= 0; allow rounding of fp16 near zero


@dataclass(frozen=True)
class Limits:
    """What a receiver accepts. Each limit is checked before the work it guards."""

    max_bytes: int = 256 << 20  # sealed object, decrypted payload and decompressed payload
    max_prompts: int = 100_000
    max_positions: int = 20_000_000  # N, summed over prompts
    max_k: int = 65_536
    max_vocab: int = 1 << 24
    max_completion_chars: int = 200_000
    max_tensors: int = 20_000


DEFAULT_LIMITS = Limits()


# --- safetensors container ----------------------------------------------------------------------


def encode_container(meta: dict[str, Json], tensors: Mapping[str, Array]) -> bytes:
    return bytes(st_save(dict(tensors), metadata={META_KEY: dumps_canonical(meta).decode("utf-8")}))


def _safetensors_prefix(data: bytes) -> bool:
    """True when `data` starts like safetensors: an 8-byte little-endian header length that fits,
    then the header's opening brace. Such a header length can begin with the bytes of a pickle's
    PROTO opcode (0x80 0x02..0x05, e.g. a 896-byte header), so this is checked before calling it a
    pickle. Nothing is ever unpickled either way; this only keeps the error honest."""
    if len(data) < 9:
        return False
    (header_len,) = struct.unpack("<Q", data[:8])
    return 2 <= header_len <= len(data) - 8 and data[8:9] == b"{"


def decode_container(data: bytes, limits: Limits) -> tuple[dict[str, Json], dict[str, Array]]:
    """Split a payload into its JSON header and tensors, refusing anything that is not safetensors."""
    if len(data) > limits.max_bytes:
        raise OversizedError("bundle payload", len(data), limits.max_bytes)
    if looks_like_pickle(data) and not _safetensors_prefix(data):
        raise UnsafePayloadError("payload is a pickle or torch archive; only safetensors is accepted")
    if len(data) < 8:
        raise FormatError("payload is too short to be safetensors")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > min(MAX_HEADER_BYTES, len(data) - 8):
        raise FormatError(f"safetensors header length {header_len} is out of range")
    try:
        header = json.loads(data[8 : 8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise FormatError("payload is not safetensors (header is not JSON)") from None
    if not isinstance(header, dict):
        raise FormatError("payload is not safetensors (header is not an object)")
    if len(header) - 1 > limits.max_tensors:
        raise OversizedError("tensor count", len(header) - 1, limits.max_tensors, "tensors")
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or not isinstance(metadata.get(META_KEY), str):
        raise UnknownFormatError("safetensors file without a knexa header")
    meta = loads_canonical(metadata[META_KEY].encode("utf-8"), max_bytes=limits.max_bytes)
    if not isinstance(meta, dict):
        raise SchemaError("knexa header is not an object")
    try:
        tensors = st_load(data)
    except SafetensorError as error:
        raise FormatError(f"payload is not valid safetensors: {error}") from None
    return meta, tensors


def _check_finite(name: str, array: Array) -> None:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise NonFiniteError(f"tensor {name} holds NaN or infinity")


def _expect(tensors: Mapping[str, Array], name: str, dtypes: Sequence[np.dtype[Any]], ndim: int) -> Array:
    array = tensors[name]
    if array.dtype not in dtypes:
        raise ShapeError(f"tensor {name} has dtype {array.dtype}, expected one of {[str(d) for d in dtypes]}")
    if array.ndim != ndim:
        raise ShapeError(f"tensor {name} has shape {array.shape}, expected {ndim} dimensions")
    return array


# --- KnowledgeBundle ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenizerId:
    """Which tokenizer the token ids refer to: a name, its vocabulary size and a digest of its files."""

    name: str
    vocab_size: int
    digest: str  # e.g. sha256 hex of tokenizer.json; students refuse logits from another tokenizer

    def to_json(self) -> dict[str, Json]:
        return {"name": self.name, "vocab_size": self.vocab_size, "digest": self.digest}


@dataclass(frozen=True, eq=False)  # arrays inside: compare fields explicitly
class TopK:
    """Top-k next-token predictions over all prompts, flat, with `offsets` marking each prompt's rows."""

    input_ids: Array  # [N] the token at each position (the student rebuilds the context from these)
    token_ids: Array  # [N, k] ids of the k most likely next tokens, most likely first
    logprobs: Array  # [N, k] their log-probabilities
    offsets: Array  # [P + 1] int64, offsets[0] == 0, offsets[-1] == N, non-decreasing

    @property
    def k(self) -> int:
        return int(self.token_ids.shape[1])

    @property
    def positions(self) -> int:
        return int(self.input_ids.shape[0])

    def prompt(self, index: int) -> tuple[Array, Array, Array]:
        """`(input_ids, token_ids, logprobs)` of one prompt."""
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        return self.input_ids[start:end], self.token_ids[start:end], self.logprobs[start:end]

    @classmethod
    def from_prompts(
        cls,
        per_prompt: Sequence[tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike]],
        vocab_size: int,
        logprob_dtype: npt.DTypeLike = np.float32,
    ) -> TopK:
        """Build from one `(input_ids [n], token_ids [n, k], logprobs [n, k])` per prompt.

        Ids are stored as uint16 when the vocabulary allows (half the bytes of int32); float16
        log-probabilities halve the size again at ~1e-3 relative precision.
        """
        if not per_prompt:
            raise SchemaError("top-k predictions need at least one prompt")
        inputs = [np.asarray(item[0]).reshape(-1) for item in per_prompt]
        k = np.asarray(per_prompt[0][1]).shape[-1]
        ids = [np.asarray(item[1]).reshape(-1, k) for item in per_prompt]
        logprobs = [np.asarray(item[2], dtype=np.float64).reshape(-1, k) for item in per_prompt]
        flat_inputs, flat_ids = np.concatenate(inputs), np.concatenate(ids)
        for name, array in (("input ids", flat_inputs), ("top-k ids", flat_ids)):
            if array.size and (array.min() < 0 or array.max() >= vocab_size):
                raise SchemaError(f"{name} outside the vocabulary of {vocab_size}")
        id_dtype = np.uint16 if vocab_size <= 1 << 16 else np.int32
        offsets = np.zeros(len(per_prompt) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(item) for item in inputs])
        return cls(
            input_ids=flat_inputs.astype(id_dtype),
            token_ids=flat_ids.astype(id_dtype),
            logprobs=np.concatenate(logprobs).astype(logprob_dtype),
            offsets=offsets,
        )

    def validate(self, prompts: int, vocab_size: int, limits: Limits) -> None:
        tensors = {
            "input_ids": self.input_ids,
            "topk_ids": self.token_ids,
            "topk_logprobs": self.logprobs,
            "offsets": self.offsets,
        }
        input_ids = _expect(tensors, "input_ids", ID_DTYPES, 1)
        ids = _expect(tensors, "topk_ids", ID_DTYPES, 2)
        logprobs = _expect(tensors, "topk_logprobs", FLOAT_DTYPES, 2)
        offsets = _expect(tensors, "offsets", (np.dtype(np.int64),), 1)
        n = input_ids.shape[0]
        if n > limits.max_positions:
            raise OversizedError("top-k positions", n, limits.max_positions, "positions")
        if ids.shape != logprobs.shape or ids.shape[0] != n:
            raise ShapeError(
                f"topk_ids {ids.shape}, topk_logprobs {logprobs.shape}, input_ids {input_ids.shape}"
            )
        if not 1 <= ids.shape[1] <= min(limits.max_k, vocab_size):
            raise ShapeError(f"k = {ids.shape[1]} is outside [1, {min(limits.max_k, vocab_size)}]")
        if offsets.shape != (prompts + 1,):
            raise ShapeError(
                f"offsets has shape {offsets.shape}, expected ({prompts + 1},) for {prompts} prompts"
            )
        if offsets[0] != 0 or offsets[-1] != n or (np.diff(offsets) < 0).any():
            raise ShapeError("offsets must start at 0, end at N and never decrease")
        for name, array in (("input_ids", input_ids), ("topk_ids", ids)):
            if array.size and (int(array.min()) < 0 or int(array.max()) >= vocab_size):
                raise SchemaError(f"{name} holds ids outside the vocabulary of {vocab_size}")
        _check_finite("topk_logprobs", logprobs)
        if logprobs.size and float(logprobs.max()) > LOGPROB_TOLERANCE:
            raise SchemaError("topk_logprobs holds positive values; log-probabilities are <= 0")


@dataclass(frozen=True, eq=False)  # arrays inside: compare fields explicitly
class KnowledgeBundle:
    """A teacher's predictions on the public transfer set, for one student in one round."""

    round: int
    teacher: str
    student: str
    tokenizer: TokenizerId
    prompt_ids: tuple[str, ...]  # identifiers of the transfer-set prompts, in order
    topk: TopK | None = None
    completions: tuple[str, ...] | None = None  # one generated completion per prompt
    version: int = 1

    FORMAT: ClassVar[str] = "knexa.knowledge"
    VERSIONS: ClassVar[frozenset[int]] = frozenset({1})

    def __post_init__(self) -> None:
        object.__setattr__(self, "teacher", checksum_address(self.teacher, "teacher"))
        object.__setattr__(self, "student", checksum_address(self.student, "student"))
        object.__setattr__(self, "prompt_ids", tuple(self.prompt_ids))
        if self.completions is not None:
            object.__setattr__(self, "completions", tuple(self.completions))
        self.validate(DEFAULT_LIMITS)

    def validate(self, limits: Limits) -> None:
        as_int(self.round, "round", 0, 2**53)
        if self.teacher == self.student:
            raise SchemaError("teacher and student are the same organization")
        as_str(self.tokenizer.name, "tokenizer.name")
        as_int(self.tokenizer.vocab_size, "tokenizer.vocab_size", 1, limits.max_vocab)
        as_str(self.tokenizer.digest, "tokenizer.digest")
        if len(self.prompt_ids) > limits.max_prompts:
            raise OversizedError("prompt count", len(self.prompt_ids), limits.max_prompts, "prompts")
        for index, prompt in enumerate(self.prompt_ids):
            as_str(prompt, f"prompt_ids[{index}]")
        if self.topk is None and self.completions is None:
            raise SchemaError("a knowledge bundle needs top-k predictions, completions, or both")
        if self.completions is not None:
            if len(self.completions) != len(self.prompt_ids):
                raise ShapeError(f"{len(self.completions)} completions for {len(self.prompt_ids)} prompts")
            for index, text in enumerate(self.completions):
                as_str(text, f"completions[{index}]", limits.max_completion_chars, empty=True)
        if self.topk is not None:
            self.topk.validate(len(self.prompt_ids), self.tokenizer.vocab_size, limits)

    def _meta(self) -> dict[str, Json]:
        return {
            "format": self.FORMAT,
            "version": self.version,
            "round": self.round,
            "teacher": self.teacher,
            "student": self.student,
            "tokenizer": self.tokenizer.to_json(),
            "prompt_ids": list(self.prompt_ids),
            "completions": list(self.completions) if self.completions is not None else None,
            "k": self.topk.k if self.topk is not None else None,
        }

    def to_bytes(self) -> bytes:
        tensors: dict[str, Array] = {}
        if self.topk is not None:
            tensors = {
                "input_ids": self.topk.input_ids,
                "topk_ids": self.topk.token_ids,
                "topk_logprobs": self.topk.logprobs,
                "offsets": self.topk.offsets,
            }
        return encode_container(self._meta(), tensors)

    @classmethod
    def from_bytes(cls, data: bytes, limits: Limits = DEFAULT_LIMITS) -> KnowledgeBundle:
        meta, tensors = decode_container(data, limits)
        version = check_format(meta, cls.FORMAT, cls.VERSIONS)
        keys = (
            "format",
            "version",
            "round",
            "teacher",
            "student",
            "tokenizer",
            "prompt_ids",
            "completions",
            "k",
        )
        as_object(meta, "$", keys)
        tok = as_object(meta["tokenizer"], "tokenizer", ("name", "vocab_size", "digest"))
        prompts = as_list(meta["prompt_ids"], "prompt_ids", limits.max_prompts)
        completions = meta["completions"]
        k = meta["k"]
        topk = None
        if k is None:
            if tensors:
                raise ShapeError(f"no top-k declared but tensors {sorted(tensors)} present")
        else:
            expected = {"input_ids", "topk_ids", "topk_logprobs", "offsets"}
            if set(tensors) != expected:
                raise ShapeError(f"tensors {sorted(tensors)}, expected {sorted(expected)}")
            topk = TopK(
                tensors["input_ids"], tensors["topk_ids"], tensors["topk_logprobs"], tensors["offsets"]
            )
            if topk.token_ids.ndim != 2 or topk.k != as_int(k, "k"):
                raise ShapeError(f"header says k = {k}, topk_ids has shape {topk.token_ids.shape}")
        bundle = cls.__new__(cls)  # validate with the receiver's limits, not the defaults
        fields = {
            "round": as_int(meta["round"], "round", 0, 2**53),
            "teacher": as_address(meta["teacher"], "teacher"),
            "student": as_address(meta["student"], "student"),
            "tokenizer": TokenizerId(
                as_str(tok["name"], "tokenizer.name"),
                as_int(tok["vocab_size"], "tokenizer.vocab_size", 1, limits.max_vocab),
                as_str(tok["digest"], "tokenizer.digest"),
            ),
            "prompt_ids": tuple(as_str(p, f"prompt_ids[{i}]") for i, p in enumerate(prompts)),
            "topk": topk,
            "completions": None
            if completions is None
            else tuple(
                as_str(c, f"completions[{i}]", limits.max_completion_chars, empty=True)
                for i, c in enumerate(as_list(completions, "completions", limits.max_prompts))
            ),
            "version": version,
        }
        for name, value in fields.items():
            object.__setattr__(bundle, name, value)
        bundle.validate(limits)
        return bundle


# --- AdapterBundle ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseModelId:
    """The frozen base model an adapter applies to."""

    name: str
    revision: str  # a version tag or a digest of the base weights

    def to_json(self) -> dict[str, Json]:
        return {"name": self.name, "revision": self.revision}


@dataclass(frozen=True, eq=False)  # arrays inside: compare fields explicitly
class AdapterBundle:
    """LoRA weights (safetensors), their peft config and the base model they belong to."""

    base_model: BaseModelId
    peft_config: Mapping[str, Json]
    weights: Mapping[str, Array] = field(default_factory=dict)
    version: int = 1

    FORMAT: ClassVar[str] = "knexa.adapter"
    VERSIONS: ClassVar[frozenset[int]] = frozenset({1})

    def __post_init__(self) -> None:
        object.__setattr__(self, "peft_config", dict(self.peft_config))
        object.__setattr__(self, "weights", dict(self.weights))
        self.validate(DEFAULT_LIMITS)

    def validate(self, limits: Limits) -> None:
        as_str(self.base_model.name, "base_model.name")
        as_str(self.base_model.revision, "base_model.revision")
        config = dict(self.peft_config)
        dumps_canonical(config)  # JSON values only, all finite
        if str(config.get("peft_type", "")).upper() != "LORA":
            raise SchemaError(f"peft_config.peft_type must be LORA, not {config.get('peft_type')!r}")
        rank = as_int(config.get("r"), "peft_config.r", 1, 65_536)
        targets = config.get("target_modules")
        if isinstance(targets, list):
            target_set: set[str] | None = {as_str(t, "peft_config.target_modules[]") for t in targets}
        elif isinstance(targets, str):
            target_set = None  # a regular expression in peft; not interpreted here
        else:
            raise SchemaError("peft_config.target_modules must be a list of names or a pattern")
        fixed_rank = not config.get("rank_pattern")
        if not self.weights:
            raise SchemaError("an adapter bundle needs weights")
        if len(self.weights) > limits.max_tensors:
            raise OversizedError("tensor count", len(self.weights), limits.max_tensors, "tensors")
        pairs: dict[str, dict[str, Array]] = {}
        for name, array in self.weights.items():
            as_str(name, "weight name", 512)
            _expect(self.weights, name, FLOAT_DTYPES, array.ndim)
            _check_finite(name, array)
            for part in ("lora_A", "lora_B"):
                marker = f".{part}."
                if marker in name:
                    module = name.split(marker)[0]
                    pairs.setdefault(module, {})[part] = array
        for module, parts in pairs.items():
            if set(parts) != {"lora_A", "lora_B"}:
                raise ShapeError(f"{module} has {sorted(parts)} but needs both lora_A and lora_B")
            a, b = parts["lora_A"], parts["lora_B"]
            if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
                raise ShapeError(f"{module}: lora_A {a.shape} and lora_B {b.shape} do not compose")
            if fixed_rank and a.shape[0] != rank:
                raise ShapeError(f"{module}: rank {a.shape[0]}, peft_config.r is {rank}")
            if target_set is not None and module.rsplit(".", 1)[-1] not in target_set:
                raise SchemaError(f"{module} is not one of the target modules {sorted(target_set)}")

    def to_bytes(self) -> bytes:
        meta: dict[str, Json] = {
            "format": self.FORMAT,
            "version": self.version,
            "base_model": self.base_model.to_json(),
            "peft_config": dict(self.peft_config),
        }
        return encode_container(meta, self.weights)

    @classmethod
    def from_bytes(cls, data: bytes, limits: Limits = DEFAULT_LIMITS) -> AdapterBundle:
        meta, tensors = decode_container(data, limits)
        version = check_format(meta, cls.FORMAT, cls.VERSIONS)
        as_object(meta, "$", ("format", "version", "base_model", "peft_config"))
        base = as_object(meta["base_model"], "base_model", ("name", "revision"))
        config = meta["peft_config"]
        if not isinstance(config, dict):
            raise SchemaError("peft_config must be an object")
        bundle = cls.__new__(cls)
        object.__setattr__(
            bundle, "base_model", BaseModelId(as_str(base["name"], "n"), as_str(base["revision"], "r"))
        )
        object.__setattr__(bundle, "peft_config", config)
        object.__setattr__(bundle, "weights", tensors)
        object.__setattr__(bundle, "version", version)
        bundle.validate(limits)
        return bundle
