"""Instruct models are prompted through their chat template, and only they are.

Pure-logic checks of `agent.models.chat` (reading a body out of an answer) and of the codec's
prompt, target and identity, on a real transformers tokenizer; plus a real checkpoint directory
(a saved zoo model) loaded through `org.model.load_base` with and without a chat template.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from transformers import PreTrainedTokenizerFast

from agent.models.chat import INSTRUCTION, ChatFormat, answer_body, chat_format_of
from agent.models.tokenizer import EOS, PAD, Codec, train_tokenizer
from agent.training import IGNORE, encode_example

TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
PROMPT = 'def add(a, b):\n    """Add two numbers."""\n'


@pytest.fixture(scope="module")
def codec() -> Codec:
    return train_tokenizer([PROMPT + "    return a + b\n", "```python\n```"] * 4, vocab_size=300)


def _hf(codec: Codec, template: str | None) -> PreTrainedTokenizerFast:
    tok = PreTrainedTokenizerFast(tokenizer_object=codec.tokenizer, eos_token=EOS, pad_token=PAD)  # type: ignore[no-untyped-call]
    if template is not None:
        tok.chat_template = template
    return tok


def test_the_template_is_applied_iff_the_tokenizer_has_one(codec: Codec) -> None:
    assert chat_format_of(_hf(codec, None)) is None
    plain = Codec(codec.tokenizer, chat=chat_format_of(_hf(codec, None)))
    assert plain.prompt_text(PROMPT) == PROMPT
    assert plain.target_text(PROMPT, "    return a + b\n") == "    return a + b\n"
    assert plain.identity == codec.identity  # a codec without a template is the tiny zoo's, unchanged

    chat = chat_format_of(_hf(codec, TEMPLATE))
    assert chat is not None
    instruct = Codec(codec.tokenizer, chat=chat)
    text = instruct.prompt_text(PROMPT)
    assert (
        text
        == f"<|im_start|>user\n{INSTRUCTION}\n\n```python\n{PROMPT}```<|im_end|>\n<|im_start|>assistant\n"
    )
    assert instruct.target_text(PROMPT, "    return a + b") == f"```python\n{PROMPT}    return a + b\n```"
    assert instruct.identity != codec.identity  # the prompt format is part of what logits depend on


def test_training_targets_follow_the_format(codec: Codec) -> None:
    instruct = Codec(codec.tokenizer, chat=chat_format_of(_hf(codec, TEMPLATE)))
    example = encode_example(instruct, PROMPT, "    return a + b\n", 512)
    labelled = [t for t in example.labels if t != IGNORE]
    prompt_ids = instruct.encode(instruct.prompt_text(PROMPT))
    assert list(example.ids[: len(prompt_ids)]) == prompt_ids
    assert example.labels[: len(prompt_ids)] == (IGNORE,) * len(prompt_ids)
    assert instruct.decode(labelled[:-1]) == f"```python\n{PROMPT}    return a + b\n```"
    assert labelled[-1] == instruct.eos_id


def test_a_template_that_does_not_render_the_message_is_not_used(
    codec: Codec, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert chat_format_of(_hf(codec, "{{ raise_exception('no user turns') }}")) is None
        assert (
            chat_format_of(_hf(codec, "{% for m in messages %}{{ m['content'] | upper }}{% endfor %}"))
            is None
        )
    assert "plain prompts" in caplog.text
    with pytest.raises(ValueError, match="verbatim"):
        ChatFormat.from_renderer(lambda messages: "twice: " + messages[0]["content"] * 2)


@pytest.mark.parametrize(
    ("answer", "body"),
    [
        (  # the whole function restated, with its docstring, inside prose
            f"Here it is:\n```python\n{PROMPT}    total = a + b\n    return total\n```\nIt adds.",
            "    total = a + b\n    return total\n",
        ),
        (  # imports and helpers move into the body; prints and asserts do not
            "```python\nimport math\n\ndef helper(x):\n    return x\n\n"
            "def add(a, b):\n    return helper(a) + b\n\nprint(add(1, 2))\nassert add(1, 2) == 3\n```",
            "    import math\n    def helper(x):\n        return x\n    return helper(a) + b\n",
        ),
        ("```python\n    return a + b\n```", "    return a + b\n"),  # a bare body
        ("```python\ndef add(a, b): return a + b\n```", "    return a + b\n"),  # one line
        (  # cut off by the token limit: the unfinished statement goes, the rest stays
            "```python\ndef add(a, b):\n    s = a + b\n    return (s +",
            "    s = a + b\n",
        ),
        ("```python\ndef other(a, b):\n    return 0\n```", ""),  # not the prompt's function
        ("I cannot help with that.", ""),
    ],
)
def test_the_body_is_read_out_of_the_answer(answer: str, body: str) -> None:
    assert answer_body(PROMPT, answer) == body
    if body:
        namespace: dict[str, object] = {}
        exec(compile(PROMPT + body, "<answer>", "exec"), namespace)  # our own literals


def test_a_checkpoint_directory_is_prompted_through_its_template_only_if_it_has_one(
    zoo_cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from org.model import load_base, zoo_checkpoint

    plain_dir = zoo_checkpoint("smoke:llama", tmp_path / "plain")
    chat_dir = tmp_path / "instruct"
    shutil.copytree(plain_dir, chat_dir)
    (chat_dir / "chat_template.jinja").write_text(TEMPLATE)
    with caplog.at_level(logging.INFO, logger="org.model"):
        plain, instruct = load_base(str(plain_dir)), load_base(str(chat_dir))
    assert plain.codec.chat is None
    assert plain.prompt_format == "plain"
    assert load_base("smoke:llama").codec.chat is None  # zoo models read the bare prompt, as before
    assert instruct.codec.chat is not None
    assert instruct.prompt_format == "chat template"
    assert instruct.describe()["prompt_format"] == "chat template"
    assert instruct.codec.prompt_text(PROMPT).endswith("<|im_start|>assistant\n")
    assert instruct.tokenizer_digest != plain.tokenizer_digest
    assert "plain: no chat template" in caplog.text
    assert "instruct: an instruct model: prompts go through its tokenizer's chat template" in caplog.text
