"""The shared byte-level BPE tokenizer, trained locally on the public corpus and cached.

All organisations of the synthetic federation use this tokenizer, which is what makes
top-k logit distillation possible between different model families. Its identity (a hash
of its serialised form) travels in every bundle so a student can tell whether logits are
usable or it must fall back to the teacher's text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from agent.cache import cache_dir
from agent.models.chat import ChatFormat

EOS = "<|endoftext|>"
PAD = "<|pad|>"


class Codec:
    """A small typed wrapper over a ``tokenizers.Tokenizer`` (no special tokens added on encode).

    ``chat`` (an instruct model's `ChatFormat`) changes how prompts, training targets and
    generated answers are written and read (`prompt_text`, `target_text`, `completion_of`);
    without it the prompt is read as it is, the target is the body and the answer is cut to the
    body. The identity covers the chat format: two codecs with one identity turn a prompt and a
    completion into the same token sequence, which is what lets top-k logits travel between them.
    """

    def __init__(
        self, tokenizer: Tokenizer, *, eos: str = EOS, pad: str = PAD, chat: ChatFormat | None = None
    ) -> None:
        self.tokenizer = tokenizer
        eos_id = tokenizer.token_to_id(eos)
        pad_id = tokenizer.token_to_id(pad)
        if eos_id is None or pad_id is None:
            raise ValueError(f"tokenizer lacks the {eos} / {pad} special tokens")
        self.eos_id: int = eos_id
        self.pad_id: int = pad_id
        self.chat = chat
        digest = hashlib.sha256(tokenizer.to_str().encode())
        if chat is not None:
            digest.update(f"\0chat\0{chat.head}\0{chat.tail}".encode())
        self.identity = "bpe-" + digest.hexdigest()[:16]

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size())

    def prompt_text(self, prompt: str) -> str:
        """What the model reads for a problem's prompt (chat-formatted for an instruct model)."""
        return prompt if self.chat is None else self.chat.prompt(prompt)

    def target_text(self, prompt: str, completion: str) -> str:
        """What the model is trained to write after `prompt_text` (the caller adds EOS)."""
        return completion if self.chat is None else self.chat.target(prompt, completion)

    def completion_of(self, prompt: str, generated: str) -> str:
        """The function body in what the model generated after `prompt_text(prompt)`."""
        return extract_body(generated) if self.chat is None else self.chat.completion(prompt, generated)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    def save(self, path: Path) -> None:
        self.tokenizer.save(str(path))

    @classmethod
    def load(cls, path: Path) -> Codec:
        return cls(Tokenizer.from_file(str(path)))


def extract_body(text: str) -> str:
    """Keep the indented function body: stop at the first non-empty, non-indented line."""
    lines: list[str] = []
    for line in text.split("\n"):
        if line.strip() and not line.startswith((" ", "\t")):
            break
        lines.append(line)
    body = "\n".join(lines).rstrip()
    return body + "\n" if body else ""


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024) -> Codec:
    """Train a byte-level BPE on ``texts`` (deterministic for a given input)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    return Codec(tok)


def shared_tokenizer(texts: Sequence[str], vocab_size: int = 1024, *, cache: Path | None = None) -> Codec:
    """The cached shared tokenizer for this corpus and vocabulary size (trained on first use)."""
    digest = hashlib.sha256()
    digest.update(str(vocab_size).encode())
    for t in texts:
        digest.update(t.encode())
        digest.update(b"\0")
    path = (cache or cache_dir()) / "tokenizers" / f"bpe-{vocab_size}-{digest.hexdigest()[:16]}.json"
    if path.exists():
        return Codec.load(path)
    codec = train_tokenizer(texts, vocab_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    codec.save(tmp)
    tmp.replace(path)
    return codec
