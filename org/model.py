"""An organization's base model: a local transformers checkpoint directory or a zoo name.

A checkpoint directory holds `config.json`, safetensors weights and a fast tokenizer
(`tokenizer.json` or what `AutoTokenizer` turns into one). It is loaded offline: no hub access,
`trust_remote_code` never set, pickled `.bin` weights refused (only safetensors). A zoo name is
`SCALE:FAMILY` (`tiny:llama`, `small:gpt2`, `smoke:neox`): the cached pretrained tiny models the
benchmark uses.

An instruct checkpoint (its tokenizer has a chat template, e.g. SmolLM2-135M-Instruct) is
prompted through that template (`agent.models.chat.ChatFormat`); a checkpoint without one,
such as a saved zoo model, reads the bare prompt. The choice is logged and `describe` names it.

The model's identity is a digest of its weights and its tokenizer. It goes into the profile, the
adapter bundle and (as the tokenizer's digest) every knowledge bundle, so a student can tell whether a
teacher's top-k logits are usable (same tokenizer) or only its completions are.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from org.errors import OrgError

log = logging.getLogger(__name__)

#: transformers `model_type` -> the family whose LoRA targets apply.
FAMILIES = {"llama": "llama", "gpt2": "gpt2", "gpt_neox": "neox"}
ZOO_SCALES = ("tiny", "small", "smoke")
ZOO_FAMILIES = {"llama": "llama-t", "gpt2": "gpt2-t", "neox": "neox-t"}


class ModelLoadError(OrgError, ValueError):
    """The base model cannot be loaded; the message says what is wrong and how to fix it."""


@dataclass
class BaseModel:
    """A loaded base model with its tokenizer (a `Codec`), LoRA spec and identity."""

    source: str
    name: str
    model: Any  # transformers.PreTrainedModel (kept Any: this module imports torch lazily)
    codec: Any  # agent.models.tokenizer.Codec
    spec: Any  # agent.models.zoo.ModelSpec
    weights_digest: str

    @property
    def tokenizer_digest(self) -> str:
        return str(self.codec.identity)

    @property
    def prompt_format(self) -> str:
        """`chat template` (an instruct model's) or `plain`."""
        return "plain" if self.codec.chat is None else "chat template"

    @property
    def identity(self) -> str:
        """One digest naming weights and tokenizer together (the adapter's `base_model.revision`)."""
        return model_identity(self.weights_digest, self.tokenizer_digest)

    def describe(self) -> dict[str, str]:
        return {
            "source": self.source,
            "name": self.name,
            "family": str(self.spec.family),
            "weights": self.weights_digest,
            "tokenizer": self.tokenizer_digest,
            "identity": self.identity,
            "prompt_format": self.prompt_format,
        }


def model_identity(weights_digest: str, tokenizer_digest: str) -> str:
    return hashlib.sha256(f"{weights_digest}\0{tokenizer_digest}".encode()).hexdigest()


def is_zoo_name(source: str) -> bool:
    scale, _, family = source.partition(":")
    return scale in ZOO_SCALES and family in ZOO_FAMILIES and not Path(source).exists()


def load_base(source: str, *, lora_rank: int | None = None, max_len: int | None = None) -> BaseModel:
    """The base model `source` names (see the module docstring); `ModelLoadError` if it cannot load."""
    if is_zoo_name(source):
        return _load_zoo(source, lora_rank, max_len)
    return _load_directory(Path(source), lora_rank, max_len)


def _digest_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def digest_state(model: Any) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode() + b"\0")
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _load_zoo(
    source: str, lora_rank: int | None, max_len: int | None, vocab_size: int | None = None
) -> BaseModel:
    from dataclasses import replace

    from agent.data.splits import pretraining_corpus
    from agent.models.tokenizer import shared_tokenizer
    from agent.models.zoo import TINY_ZOO, ZOO, load_or_pretrain
    from agent.world import config_for_scale

    scale, _, family = source.partition(":")
    cfg = config_for_scale(scale)
    table = {**ZOO, **TINY_ZOO}
    spec = next(table[name] for name in cfg.families if table[name].family == family)
    corpus = pretraining_corpus(cfg.corpus_size)
    codec = shared_tokenizer([p.prompt + p.solution for p in corpus], vocab_size or cfg.vocab_size)
    model, _ = load_or_pretrain(spec, codec, corpus, cfg.pretrain)
    spec = replace(spec, lora_rank=lora_rank or spec.lora_rank, max_len=max_len or spec.max_len)
    return BaseModel(source, spec.name, model, codec, spec, digest_state(model))


def _load_directory(path: Path, lora_rank: int | None, max_len: int | None) -> BaseModel:
    check_source(str(path))
    weights = sorted(path.glob("*.safetensors"))
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from agent.models.chat import chat_format_of
    from agent.models.tokenizer import Codec
    from agent.models.zoo import ModelSpec

    config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    model_type = str(config.model_type)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelLoadError(f"{path}: the tokenizer does not load ({error})") from error
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ModelLoadError(f"{path}: a fast tokenizer (tokenizer.json) is needed")
    eos = tokenizer.eos_token
    if eos is None:
        raise ModelLoadError(f"{path}: the tokenizer has no eos_token (set it in tokenizer_config.json)")
    chat = chat_format_of(tokenizer)
    try:
        codec = Codec(backend, eos=str(eos), pad=str(tokenizer.pad_token or eos), chat=chat)
    except ValueError as error:
        raise ModelLoadError(f"{path}: {error}") from error
    if chat is None:
        log.info("%s: no chat template: prompts are the bare function prompts", path.name)
    else:
        log.info("%s: an instruct model: prompts go through its tokenizer's chat template", path.name)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(path), local_files_only=True, dtype=torch.float32, use_safetensors=True
        )
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        raise ModelLoadError(f"{path}: the weights do not load ({error})") from error
    embedding: Any = model.get_input_embeddings()
    if int(embedding.weight.shape[0]) < codec.vocab_size:
        raise ModelLoadError(
            f"{path}: the tokenizer has {codec.vocab_size} tokens, the model's embedding fewer"
        )
    model.eval()  # type: ignore[no-untyped-call]
    family = FAMILIES[model_type]
    default_rank = 8
    spec = ModelSpec(
        name=path.name,
        family=family,  # type: ignore[arg-type]  # checked against FAMILIES above
        hidden=int(config.hidden_size),
        layers=int(config.num_hidden_layers),
        heads=int(config.num_attention_heads),
        intermediate=int(getattr(config, "intermediate_size", 0) or getattr(config, "n_inner", 0) or 0),
        lora_rank=lora_rank or default_rank,
        max_len=max_len or 256,
    )
    return BaseModel(str(path), path.name, model, codec, spec, _digest_files(weights))


def save_checkpoint(base: BaseModel, directory: Path) -> Path:
    """Write `base` as a checkpoint directory that `load_base` reads (e.g. a zoo model to start from)."""
    from transformers import PreTrainedTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    base.model.save_pretrained(str(directory))
    eos = base.codec.tokenizer.id_to_token(base.codec.eos_id)
    pad = base.codec.tokenizer.id_to_token(base.codec.pad_id)
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=base.codec.tokenizer, eos_token=eos, pad_token=pad
    )
    fast.save_pretrained(str(directory))
    return directory


def zoo_checkpoint(source: str, directory: Path, *, vocab_size: int | None = None) -> Path:
    """Save zoo model `source` as a checkpoint directory; another `vocab_size` gives it its own
    tokenizer (and a model pretrained on that tokenizer), as a different organization's would be."""
    if not is_zoo_name(source):
        raise ModelLoadError(f"{source!r} is not a zoo name (SCALE:FAMILY)")
    return save_checkpoint(_load_zoo(source, None, None, vocab_size), directory)


def check_source(source: str) -> str:
    """A quick look at `source` without loading its weights (what `init` does; `doctor` loads it):
    the zoo name, or the directory's config, tokenizer and safetensors headers. Returns the value
    to store in the organization's config (an absolute path for a directory)."""
    if is_zoo_name(source):
        return source
    if ":" in source and not Path(source).exists() and source.split(":")[0] in ZOO_SCALES:
        families = ", ".join(ZOO_FAMILIES)
        raise ModelLoadError(f"unknown zoo model {source!r}: use SCALE:FAMILY, FAMILY one of {families}")
    path = Path(source)
    if not path.is_dir():
        raise ModelLoadError(
            f"{path}: not a directory (give a checkpoint directory or a zoo name like tiny:llama)"
        )
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path}: no config.json (save the model with save_pretrained)")
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        raise ModelLoadError(f"{path}: no .safetensors weights (pickled .bin weights are refused)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from safetensors import SafetensorError, safe_open
    from transformers import AutoConfig, AutoTokenizer

    try:
        model_type = str(
            getattr(AutoConfig.from_pretrained(str(path), local_files_only=True), "model_type", "")
        )
    except (OSError, ValueError, KeyError) as error:
        raise ModelLoadError(f"{path}/config.json: {error}") from error
    if model_type not in FAMILIES:
        supported = ", ".join(FAMILIES)
        raise ModelLoadError(f"{path}: model type {model_type!r} is not supported (supported: {supported})")
    for file in weights:
        try:
            with safe_open(str(file), framework="numpy") as handle:
                if not list(handle.keys()):
                    raise ModelLoadError(f"{file}: holds no tensors")
        except (SafetensorError, OSError) as error:
            raise ModelLoadError(f"{file}: not a safetensors file ({error})") from error
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelLoadError(f"{path}: the tokenizer does not load ({error})") from error
    if getattr(tokenizer, "backend_tokenizer", None) is None or tokenizer.eos_token is None:
        raise ModelLoadError(f"{path}: a fast tokenizer (tokenizer.json) with an eos_token is needed")
    return str(path.resolve())
