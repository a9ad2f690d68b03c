"""Prompting an instruct model through its chat template, and reading a function body out of its answer.

A plain causal LM continues a problem's prompt (signature + docstring) with the function body.
An instruct model such as SmolLM2-135M-Instruct does not: given the bare prompt it closes the code
and starts explaining it. Asked through its chat template, it answers with a code block that holds
the whole function. `ChatFormat` writes the prompt that way, turns the answer back into a function
body (what bundles carry, and what the sandbox runs after the prompt, as for every other model),
and writes the training target in the form the model answers in (a code block restating the
prompt, then the body).

The template is rendered once, around a placeholder, when the tokenizer is loaded: `head` and
`tail` are plain strings, so a codec with a chat format stays picklable and its identity can cover
the format.
"""

from __future__ import annotations

import ast
import logging
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: The user's request; the prompt follows in a code block (the wording of bench/humaneval.py's Pass@1).
INSTRUCTION = "Complete this Python function. Answer with one code block."
_SLOT = "KNEXA-PROMPT-SLOT-5d1c"
_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|$)", re.DOTALL)
_DEF = re.compile(r"^def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)
#: Top-level statements of an answer that may move into the function body (definitions and
#: imports); anything else (prints, asserts, `if __name__` blocks) would run on every call.
_MOVABLE = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign)


@dataclass(frozen=True)
class ChatFormat:
    """An instruct model's prompt format (see the module docstring)."""

    head: str  # the rendered template before the user's content (system turn, user opener)
    tail: str  # after it: the end of the user's turn and the opener of the assistant's

    @classmethod
    def from_renderer(cls, render: Callable[[list[dict[str, str]]], str]) -> ChatFormat:
        """From a function that renders chat messages with the generation prompt appended."""
        rendered = render([{"role": "user", "content": _SLOT}])
        if rendered.count(_SLOT) != 1:
            raise ValueError("the chat template does not render a user message verbatim")
        head, tail = rendered.split(_SLOT)
        return cls(head, tail)

    def prompt(self, prompt: str) -> str:
        return f"{self.head}{INSTRUCTION}\n\n```python\n{prompt}```{self.tail}"

    def target(self, prompt: str, completion: str) -> str:
        """The answer the model is trained to give: the prompt and body in one code block."""
        if completion and not completion.endswith("\n"):
            completion += "\n"
        return f"```python\n{prompt}{completion}```"

    def completion(self, prompt: str, answer: str) -> str:
        """The function body of `answer` for `prompt` (empty when none can be read)."""
        return answer_body(prompt, answer)


def chat_format_of(hf_tokenizer: Any) -> ChatFormat | None:
    """The `ChatFormat` of a transformers tokenizer that has a chat template, else `None`
    (plain prompts). A template that cannot render one user message also gives `None`, logged."""
    if not isinstance(getattr(hf_tokenizer, "chat_template", None), str):
        return None

    def render(messages: list[dict[str, str]]) -> str:
        return str(hf_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))

    try:
        return ChatFormat.from_renderer(render)
    except Exception as error:  # a third-party Jinja template may raise anything
        log.warning("the tokenizer's chat template is not usable (%s): plain prompts", error)
        return None


def _indented_body(code: str) -> str:
    """`code` as a body: kept when its first line is indented, else empty."""
    lines = code.rstrip().split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines or not lines[0].startswith((" ", "\t")):
        return ""
    return "\n".join(lines) + "\n"


def _parse_prefix(lines: list[str]) -> ast.Module | None:
    """The longest prefix of `lines` that parses (an answer cut off by the token limit loses its
    unfinished last statement, not the whole function)."""
    for end in range(len(lines), 0, -1):
        try:
            return ast.parse("\n".join(lines[:end]))
        except SyntaxError:
            continue
    return None


def _start_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None)
    return int(decorators[0].lineno) if decorators else node.lineno


def answer_body(prompt: str, answer: str) -> str:
    """The body of the prompt's function (its last `def`) as the answer's code block writes it.

    The answer's definition of that function gives the body (its docstring dropped: the prompt has
    one); the answer's other imports and definitions go first, inside the body, so that
    `prompt + body` runs as the answer would. An answer that is a bare body is kept as it is.
    """
    match = _BLOCK.search(answer)
    code = match.group(1) if match else answer
    names = _DEF.findall(prompt)
    if not names:
        return _indented_body(code)
    lines = code.split("\n")
    tree = _parse_prefix(lines)
    if tree is None:
        return _indented_body(code)
    target = [
        n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == names[-1]
    ]
    if not target:
        return _indented_body(code)
    fn = target[-1]
    statements = list(fn.body)
    if (
        len(statements) > 1
        and isinstance(statements[0], ast.Expr)
        and isinstance(statements[0].value, ast.Constant)
        and isinstance(statements[0].value.value, str)
    ):
        statements = statements[1:]
    first, last = statements[0], fn.body[-1]
    body_lines = lines[first.lineno - 1 : (last.end_lineno or last.lineno)]
    # blank out what precedes the first statement on its line (`def f(x): return x`)
    body_lines[0] = " " * first.col_offset + body_lines[0][first.col_offset :]
    body = textwrap.dedent("\n".join(body_lines))
    helpers = [
        textwrap.dedent("\n".join(lines[_start_line(n) - 1 : n.end_lineno]))
        for n in tree.body
        if n is not fn and isinstance(n, _MOVABLE)
    ]
    joined = "\n".join([*helpers, body])
    return textwrap.indent(joined, "    ", lambda line: bool(line.strip())).rstrip() + "\n"
