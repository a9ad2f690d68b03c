"""The dispute judge on real sealed envelopes (pure logic: no chain, no store).

Each defect a teacher can put into a bundle is proven by the student's evidence; each way a
student can craft evidence (a wrong key, another pair's bundle, oversized, malformed) proves nothing.
"""

from __future__ import annotations

import dataclasses
import json
import struct

import pytest
from coincurve import PrivateKey
from eth_account import Account

from exchange.canonical import dumps_canonical
from exchange.cid import cid_of
from exchange.disclosure import DisclosureError, KeyDisclosure, disclose, envelope_key, verify_disclosure
from exchange.ecies import decrypt, decrypt_with_key, encrypt, public_key_of
from exchange.sealing import associated_data, ciphertext_of, encode_envelope, read_header, seal
from market.disputes import (
    MAX_EVIDENCE_BYTES,
    DisputeEvidence,
    DisputeVerdict,
    EvidenceFormatError,
    EvidenceKeyError,
    EvidenceMismatchError,
    PairFacts,
    check_evidence,
    check_key,
    judge,
    prepare_evidence,
)
from market.sealing import seal_bundle
from tests.exchange.samples import STUDENT, TEACHER, TEACHER_KEY, knowledge

ENCRYPTION_KEY = b"\x33" * 32  # the student's registered encryption key (not its account key)
OTHER_KEY = b"\x44" * 32


def _facts(envelope: bytes, round_id: int = 4, pair_index: int = 1) -> PairFacts:
    return PairFacts(round_id, pair_index, TEACHER, STUDENT, cid_of(envelope), public_key_of(ENCRYPTION_KEY))


def _good() -> bytes:
    return seal_bundle(
        knowledge(), teacher_key=TEACHER_KEY, recipient_public_key=public_key_of(ENCRYPTION_KEY)
    )


def _evidence_for(envelope: bytes, facts: PairFacts) -> DisputeEvidence:
    return prepare_evidence(facts, envelope, ENCRYPTION_KEY)[0]


def test_the_disclosed_point_opens_exactly_that_envelope() -> None:
    envelope = _good()
    header, ciphertext = read_header(envelope)
    disclosure = disclose(ENCRYPTION_KEY, header.ephemeral)
    verify_disclosure(disclosure, public_key_of(ENCRYPTION_KEY), header.ephemeral)
    # the point is the envelope's shared point: the student's own decryption agrees with it
    assert decrypt(ciphertext_of(header, ciphertext), ENCRYPTION_KEY, associated_data(header))
    other_header, _ = read_header(_good())
    with pytest.raises(DisclosureError):  # the same disclosure does not pass for another envelope
        verify_disclosure(disclosure, public_key_of(ENCRYPTION_KEY), other_header.ephemeral)
    # a point computed with another private key does not pass for the registered one
    forged = disclose(OTHER_KEY, header.ephemeral)
    with pytest.raises(DisclosureError):
        verify_disclosure(forged, public_key_of(ENCRYPTION_KEY), header.ephemeral)
    # nor does the true point with a proof taken from elsewhere
    spliced = dataclasses.replace(forged, shared_point=disclosure.shared_point)
    with pytest.raises(DisclosureError):
        verify_disclosure(spliced, public_key_of(ENCRYPTION_KEY), header.ephemeral)
    assert disclose(ENCRYPTION_KEY, header.ephemeral) == disclosure  # deterministic


def test_a_good_bundle_is_judged_not_defective() -> None:
    envelope = _good()
    facts = _facts(envelope)
    evidence, verdict = prepare_evidence(facts, envelope, ENCRYPTION_KEY)
    assert not verdict.defective
    assert [c.check for c in verdict.checks] == [
        "evidence",
        "size",
        "header",
        "recipient",
        "key",
        "decrypt",
        "signature",
        "content",
    ]
    assert all(c.passed for c in verdict.checks)
    again = judge(facts, evidence.cid(), evidence.to_bytes(), envelope)
    assert again.to_bytes() == verdict.to_bytes()  # pure: replay redoes it byte for byte
    assert DisputeVerdict.from_bytes(verdict.to_bytes()) == verdict


def _sealed_by(
    teacher_key: bytes, recipient: bytes, payload: bytes | None = None, round_id: int = 4
) -> bytes:
    return seal(
        knowledge().to_bytes() if payload is None else payload,
        kind="knowledge",
        round=round_id,
        teacher_key=teacher_key,
        student=STUDENT,
        recipient_public_key=public_key_of(recipient),
    )


def _tamper_ciphertext(envelope: bytes) -> bytes:
    return envelope[:-1] + bytes([envelope[-1] ^ 1])


@pytest.mark.parametrize(
    ("make", "check"),
    [
        (lambda: b"garbage, not an envelope", "header"),
        (lambda: _sealed_by(TEACHER_KEY, ENCRYPTION_KEY, round_id=5), "header"),
        (lambda: _sealed_by(TEACHER_KEY, OTHER_KEY), "recipient"),
        (lambda: _tamper_ciphertext(_good()), "decrypt"),
        (lambda: _sealed_by(b"\x55" * 32, ENCRYPTION_KEY), "header"),  # names another teacher
        (lambda: _sealed_by(TEACHER_KEY, ENCRYPTION_KEY, payload=b"not a bundle at all"), "content"),
    ],
)
def test_every_defect_is_proven(make: object, check: str) -> None:
    envelope = make()  # type: ignore[operator]
    facts = _facts(envelope)
    evidence, verdict = prepare_evidence(facts, envelope, ENCRYPTION_KEY)
    assert verdict.defective
    assert evidence.claim == check
    assert verdict.checks[-1].check == check
    assert not verdict.checks[-1].passed
    assert judge(facts, evidence.cid(), evidence.to_bytes(), envelope) == verdict


def test_a_signature_by_someone_else_is_proven() -> None:
    """An envelope whose header names the teacher but whose signature is another key's."""
    good = _good()
    header, ciphertext = read_header(good)
    plaintext = decrypt(ciphertext_of(header, ciphertext), ENCRYPTION_KEY, associated_data(header))
    forged = _sealed_by(b"\x55" * 32, ENCRYPTION_KEY)  # signed by another key, for the same header fields
    f_header, f_cipher = read_header(forged)
    f_plain = decrypt(ciphertext_of(f_header, f_cipher), ENCRYPTION_KEY, associated_data(f_header))
    mixed = f_plain[:65] + plaintext[65:]
    sealed = encrypt(mixed, header.recipient, associated_data(header))
    envelope = encode_envelope(
        dataclasses.replace(header, ephemeral=sealed.ephemeral_public_key, nonce=sealed.nonce), sealed.data
    )
    facts = _facts(envelope)
    evidence, verdict = prepare_evidence(facts, envelope, ENCRYPTION_KEY)
    assert verdict.defective
    assert evidence.claim == "signature"


def test_an_oversized_bundle_is_defective_without_a_key() -> None:
    envelope = _good()
    facts = _facts(envelope)
    evidence = _evidence_for(envelope, facts)
    verdict = judge(facts, evidence.cid(), evidence.to_bytes(), None)  # the store refused it as too large
    assert verdict.defective
    assert verdict.checks[-1].check == "size"


def _rewrite(evidence: DisputeEvidence, **changes: object) -> bytes:
    doc = evidence.to_json()
    doc.update(changes)  # type: ignore[arg-type]
    return dumps_canonical(doc)


def test_crafted_evidence_proves_nothing() -> None:
    """Evidence of a good bundle cannot be made to prove a defect, whatever the student writes."""
    envelope = _good()
    facts = _facts(envelope)
    honest = _evidence_for(envelope, facts)
    header, _ = read_header(envelope)
    wrong = disclose(OTHER_KEY, header.ephemeral)  # a point that does not decrypt: "undecryptable"?
    lying = dataclasses.replace(honest, disclosure=wrong, claim="decrypt")
    no_key = dataclasses.replace(honest, disclosure=None)
    other_round = _evidence_for(envelope, _facts(envelope, round_id=3))
    other_pair = _evidence_for(envelope, _facts(envelope, pair_index=0))
    other_bundle = _evidence_for(_good(), _facts(_good()))
    padded = _rewrite(honest, detail="x" * 1024)[:-1] + b" " * MAX_EVIDENCE_BYTES + b"}"
    cases: list[tuple[bytes | None, type[Exception], str]] = [
        (lying.to_bytes(), EvidenceKeyError, "key"),
        (no_key.to_bytes(), EvidenceKeyError, "key"),
        (other_round.to_bytes(), EvidenceMismatchError, "evidence"),
        (other_pair.to_bytes(), EvidenceMismatchError, "evidence"),
        (other_bundle.to_bytes(), EvidenceMismatchError, "evidence"),
        (padded, EvidenceFormatError, "evidence"),
        (None, EvidenceFormatError, "evidence"),  # the store refused it as oversized
        (b"{not json", EvidenceFormatError, "evidence"),
        (json.dumps(honest.to_json(), indent=1).encode(), EvidenceFormatError, "evidence"),  # not canonical
        (_rewrite(honest, pair_index=5000), EvidenceFormatError, "evidence"),
        (_rewrite(honest, claim="vibes"), EvidenceFormatError, "evidence"),
        (_rewrite(honest, disclosure={"shared_point": "zz", "proof": {}}), EvidenceFormatError, "evidence"),
        (_rewrite(honest, extra=1), EvidenceFormatError, "evidence"),
        (_rewrite(honest, format="knexa.profile"), EvidenceFormatError, "evidence"),
    ]
    for data, error, check in cases:
        if check == "evidence":
            with pytest.raises(error):
                check_evidence(facts, data)
        else:
            assert data is not None
            with pytest.raises(error):
                check_key(check_evidence(facts, data), facts, header.ephemeral)
        verdict = judge(facts, cid_of(data or b"x"), data, envelope)
        assert not verdict.defective, (error, check)
        assert verdict.checks[-1].check == check
        assert not verdict.checks[-1].passed
        assert error.__name__ in verdict.checks[-1].detail


def test_a_disclosure_of_junk_points_is_a_typed_error() -> None:
    envelope = _good()
    header, _ = read_header(envelope)
    junk = KeyDisclosure(b"\x02" + b"\xff" * 32, b"\x02" * 33, b"\x03" * 33, b"\x00" * 32)
    with pytest.raises(DisclosureError):
        verify_disclosure(junk, public_key_of(ENCRYPTION_KEY), header.ephemeral)
    g = bytes(PrivateKey(b"\x01" * 32).public_key.format())
    with pytest.raises(DisclosureError):
        verify_disclosure(
            KeyDisclosure(g, g, g, b"\x00" * 32), public_key_of(ENCRYPTION_KEY), header.ephemeral
        )


def test_evidence_round_trips_and_truncated_envelopes_are_defective() -> None:
    envelope = _good()
    facts = _facts(envelope)
    evidence = _evidence_for(envelope, facts)
    assert DisputeEvidence.from_bytes(evidence.to_bytes()) == evidence
    truncated = envelope[:4] + struct.pack(">I", 1 << 20) + envelope[8:40]
    t_facts = _facts(truncated)
    t_evidence, verdict = prepare_evidence(t_facts, truncated, ENCRYPTION_KEY)
    assert verdict.defective
    assert t_evidence.disclosure is None
    assert t_evidence.claim == "header"


def test_a_copied_ephemeral_key_is_never_disclosed() -> None:
    """A teacher that copies the ephemeral key of another envelope to the same student into its own
    header would, through the student's disclosure, open that other envelope for everyone."""
    honest = _good()  # round 4, another teacher's bundle to this student
    header, ciphertext = read_header(honest)
    copier = Account.from_key(b"\x66" * 32).address
    copied = encode_envelope(dataclasses.replace(header, round=5, teacher=copier), b"\x00" * 64)
    facts = PairFacts(5, 0, copier, STUDENT, cid_of(copied), public_key_of(ENCRYPTION_KEY))
    naive, verdict = prepare_evidence(facts, copied, ENCRYPTION_KEY)
    assert verdict.defective  # the undecryptable envelope would be proven...
    assert naive.disclosure is not None
    key = envelope_key(naive.disclosure, public_key_of(ENCRYPTION_KEY), header.ephemeral)
    assert decrypt_with_key(ciphertext_of(header, ciphertext), key, associated_data(header))  # ...leaking
    guarded, verdict = prepare_evidence(facts, copied, ENCRYPTION_KEY, other_ephemerals={header.ephemeral})
    assert guarded.disclosure is None
    assert not verdict.defective  # so the student does not dispute (and reports instead)
    assert verdict.checks[-1].check == "key"
