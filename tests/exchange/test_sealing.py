"""Sealed bundles end to end through a real store: what the right student gets, and every way a
bad bundle is refused with a typed error while the store stays as it was."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from exchange.cid import cid_of
from exchange.ecies import encrypt, public_key_of
from exchange.errors import (
    CidMismatchError,
    DecryptionError,
    HeaderMismatchError,
    NonFiniteError,
    OversizedError,
    UnknownFormatError,
    UnsafePayloadError,
    WrongRecipientError,
    WrongSignerError,
)
from exchange.ipfs import IpfsStore
from exchange.local import LocalStore
from exchange.node import IpfsNode
from exchange.sealing import SealedHeader, associated_data, encode_envelope, read_header, seal, signing_digest
from exchange.store import ContentStore
from market.bundles import AdapterBundle, KnowledgeBundle, Limits, encode_container
from market.sealing import open_knowledge, open_sealed, publish_sealed, seal_bundle
from tests.exchange.samples import adapter, knowledge, knowledge_payload

TEACHER = Account.from_key(b"\x11" * 32)
STUDENT = Account.from_key(b"\x22" * 32)
INTRUDER = Account.from_key(b"\x33" * 32)
STUDENT_PUBLIC = public_key_of(STUDENT.key)
ROUND = 4


@dataclass
class Harness:
    store: ContentStore
    state: Callable[[], object]  # everything observable about the store, to show nothing changed

    def put(self, data: bytes) -> str:
        return self.store.put(data)

    def open(self, cid: str, **changes: Any) -> Any:
        args: dict[str, Any] = {
            "recipient_private_key": STUDENT.key,
            "expected_teacher": TEACHER.address,
            "expected_round": ROUND,
            "expected_student": STUDENT.address,
        }
        limits = changes.pop("limits", Limits())
        args.update(changes)
        return open_sealed(cid, self.store, limits=limits, **args)

    def refuses(self, cid: str, error: type[Exception], **changes: Any) -> None:
        before = self.state()
        with pytest.raises(error):
            self.open(cid, **changes)
        assert self.state() == before


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(params=["local", pytest.param("ipfs", marks=pytest.mark.ipfs)])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "local":
        store = LocalStore(tmp_path / "store")
        yield Harness(store, lambda: _files(store.root))
    else:
        ipfs: IpfsStore = request.getfixturevalue("ipfs_store")
        node: IpfsNode = request.getfixturevalue("ipfs_node")
        blocks = node.repo_dir / "blocks"
        yield Harness(ipfs, lambda: (ipfs.pins(), sorted(p.name for p in blocks.rglob("*.data"))))


def sealed_knowledge(**changes: Any) -> bytes:
    bundle = knowledge(**{"teacher": TEACHER.address, "student": STUDENT.address, "round": ROUND, **changes})
    return seal_bundle(bundle, teacher_key=TEACHER.key, recipient_public_key=STUDENT_PUBLIC)


def forge(payload: bytes, signer: Any, recipient: bytes = STUDENT_PUBLIC, **header: Any) -> bytes:
    """Build an envelope by hand, as an attacker could, with any header and any signing key."""
    fields: dict[str, Any] = {
        "kind": "knowledge",
        "round": ROUND,
        "teacher": TEACHER.address,
        "student": STUDENT.address,
        "recipient": recipient,
        "ephemeral": b"",
        "nonce": b"",
        "compression": "none",
    }
    fields.update(header)
    head = SealedHeader(**fields)
    signature = signer.sign_message(encode_defunct(primitive=signing_digest(head, payload))).signature
    sealed = encrypt(bytes(signature) + payload, recipient, associated_data(head))
    return encode_envelope(
        dataclasses.replace(head, ephemeral=sealed.ephemeral_public_key, nonce=sealed.nonce), sealed.data
    )


# --- the good path ------------------------------------------------------------------------------


def test_student_opens_what_the_teacher_sealed(harness: Harness) -> None:
    bundle = knowledge(teacher=TEACHER.address, student=STUDENT.address, round=ROUND)
    cid = publish_sealed(harness.store, bundle, teacher_key=TEACHER.key, recipient_public_key=STUDENT_PUBLIC)
    envelope = harness.store.get(cid)
    assert b"HumanEval/1" not in envelope
    assert b"return [x for x in y]" not in envelope
    header, _ = read_header(envelope)
    assert (header.round, header.teacher, header.student) == (ROUND, TEACHER.address, STUDENT.address)
    opened = open_knowledge(cid, harness.store, STUDENT.key, TEACHER.address, ROUND, STUDENT.address)
    assert opened.completions == bundle.completions
    assert opened.topk is not None
    assert bundle.topk is not None
    assert np.array_equal(opened.topk.logprobs, bundle.topk.logprobs)


def test_adapter_bundle_with_compression(harness: Harness) -> None:
    bundle = adapter()
    cid = publish_sealed(
        harness.store,
        bundle,
        teacher_key=TEACHER.key,
        recipient_public_key=STUDENT_PUBLIC.hex(),
        round=ROUND,
        student=STUDENT.address,
        compression="zlib",
    )
    opened = harness.open(cid)
    assert isinstance(opened, AdapterBundle)
    assert all(np.array_equal(opened.weights[name], array) for name, array in bundle.weights.items())


def test_sealing_twice_gives_different_ciphertexts() -> None:
    assert sealed_knowledge() != sealed_knowledge()  # fresh ephemeral key and nonce each time


def test_only_the_named_teacher_can_seal_its_bundle() -> None:
    bundle = knowledge(teacher=TEACHER.address, student=STUDENT.address)
    with pytest.raises(Exception, match="key is"):
        seal_bundle(bundle, teacher_key=INTRUDER.key, recipient_public_key=STUDENT_PUBLIC)


# --- bad input: typed error, store unchanged ----------------------------------------------------


def test_truncated_or_tampered_bytes_under_the_cid(harness: Harness, request: pytest.FixtureRequest) -> None:
    envelope = sealed_knowledge()
    cid = harness.put(envelope)
    if isinstance(harness.store, LocalStore):
        path = harness.store.root / "objects" / cid[-2:] / cid
        path.chmod(0o644)
        path.write_bytes(envelope[:-16])  # truncated
    else:
        node: IpfsNode = request.getfixturevalue("ipfs_node")
        (block,) = [p for p in (node.repo_dir / "blocks").rglob("*.data") if p.read_bytes() == envelope]
        tampered = bytearray(envelope)
        tampered[-20] ^= 0x80
        block.write_bytes(bytes(tampered))
    harness.refuses(cid, CidMismatchError)


def test_wrong_recipient(harness: Harness) -> None:
    cid = harness.put(sealed_knowledge())
    harness.refuses(cid, WrongRecipientError, recipient_private_key=INTRUDER.key)
    # Rewriting the public header to name the intruder's key does not help: the header is authenticated.
    envelope = harness.store.get(cid)
    header, ciphertext = read_header(envelope)
    rewritten = encode_envelope(
        dataclasses.replace(header, recipient=public_key_of(INTRUDER.key)), ciphertext
    )
    harness.refuses(harness.put(rewritten), DecryptionError, recipient_private_key=INTRUDER.key)


def test_wrong_signer(harness: Harness) -> None:
    payload = knowledge(teacher=TEACHER.address, student=STUDENT.address, round=ROUND).to_bytes()
    cid = harness.put(forge(payload, signer=INTRUDER))  # claims to be from TEACHER
    harness.refuses(cid, WrongSignerError)
    # An honest bundle of another teacher is not accepted for this pair either.
    honest = seal_bundle(
        knowledge(teacher=INTRUDER.address, student=STUDENT.address, round=ROUND),
        teacher_key=INTRUDER.key,
        recipient_public_key=STUDENT_PUBLIC,
    )
    harness.refuses(harness.put(honest), HeaderMismatchError)


def test_replayed_for_another_round_or_student(harness: Harness) -> None:
    cid = harness.put(sealed_knowledge())
    harness.refuses(cid, HeaderMismatchError, expected_round=ROUND + 1)
    harness.refuses(cid, HeaderMismatchError, expected_student=INTRUDER.address)
    # A signed envelope whose inner bundle names someone else is refused after decryption.
    inner = knowledge(teacher=TEACHER.address, student=INTRUDER.address, round=ROUND).to_bytes()
    harness.refuses(harness.put(forge(inner, signer=TEACHER)), HeaderMismatchError)


def test_unknown_format_versions(harness: Harness) -> None:
    envelope = sealed_knowledge()
    header, ciphertext = read_header(envelope)
    future = encode_envelope(dataclasses.replace(header, version=2), ciphertext)
    harness.refuses(harness.put(future), UnknownFormatError)
    payload = knowledge_payload(
        {"version": 9, "teacher": TEACHER.address, "student": STUDENT.address, "round": ROUND}
    )
    harness.refuses(harness.put(forge(payload, signer=TEACHER)), UnknownFormatError)


def test_oversized(harness: Harness) -> None:
    envelope = sealed_knowledge()
    cid = harness.put(envelope)
    harness.refuses(cid, OversizedError, limits=Limits(max_bytes=len(envelope) - 1))
    # A decompression bomb: small on the wire, far over the limit once inflated.
    bomb = seal(
        b"\0" * (40 << 20),
        kind="knowledge",
        round=ROUND,
        teacher_key=TEACHER.key,
        student=STUDENT.address,
        recipient_public_key=STUDENT_PUBLIC,
        compression="zlib",
    )
    assert len(bomb) < 100_000
    harness.refuses(harness.put(bomb), OversizedError, limits=Limits(max_bytes=1 << 20))


def test_nan_and_infinity_in_a_signed_bundle(harness: Harness) -> None:
    bundle = knowledge(teacher=TEACHER.address, student=STUDENT.address, round=ROUND)
    assert bundle.topk is not None
    for bad in (np.nan, np.inf):
        logprobs = bundle.topk.logprobs.copy()
        logprobs[0, 0] = bad
        tensors = {
            "input_ids": bundle.topk.input_ids,
            "topk_ids": bundle.topk.token_ids,
            "topk_logprobs": logprobs,
            "offsets": bundle.topk.offsets,
        }
        payload = encode_container(bundle._meta(), tensors)
        cid = harness.put(
            seal(
                payload,
                kind="knowledge",
                round=ROUND,
                teacher_key=TEACHER.key,
                student=STUDENT.address,
                recipient_public_key=STUDENT_PUBLIC,
            )
        )
        harness.refuses(cid, NonFiniteError)


def test_pickle_payloads(harness: Harness) -> None:
    sealed_pickle = seal(
        pickle.dumps({"logits": np.zeros(4)}),
        kind="knowledge",
        round=ROUND,
        teacher_key=TEACHER.key,
        student=STUDENT.address,
        recipient_public_key=STUDENT_PUBLIC,
    )
    harness.refuses(harness.put(sealed_pickle), UnsafePayloadError)
    harness.refuses(harness.put(pickle.dumps([1, 2, 3])), UnsafePayloadError)  # not even an envelope


def test_tampered_ciphertext_or_header_stored_under_its_own_cid(harness: Harness) -> None:
    envelope = bytearray(sealed_knowledge())
    envelope[-40] ^= 0x01
    harness.refuses(harness.put(bytes(envelope)), DecryptionError)
    header, ciphertext = read_header(sealed_knowledge(round=ROUND))
    relabelled = encode_envelope(dataclasses.replace(header, compression="zlib"), ciphertext)
    harness.refuses(harness.put(relabelled), DecryptionError)


def test_open_fetches_the_cid_it_was_given(harness: Harness) -> None:
    cid = harness.put(sealed_knowledge())
    assert cid == cid_of(harness.store.get(cid))
    assert isinstance(harness.open(cid), KnowledgeBundle)
