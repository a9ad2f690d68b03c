"""Sealed envelopes: signed by the teacher's Ethereum key, encrypted to the student's public key.

IPFS is public, so a bundle travels encrypted to the student's registered secp256k1 key (see
`exchange.ecies`). Inside, the payload carries the teacher's EIP-191 signature over a
domain-separated digest of the payload and the header fields (format, version, kind, round, teacher,
student, recipient key), so a student can prove who sent what for which round, and a bundle signed for
one student or round cannot be passed off for another.

Envelope bytes:

    b"KNXS" | header length (uint32, big-endian) | header (canonical JSON) | AES-GCM ciphertext

    header = {"format": "knexa.sealed", "version": 1, "kind": "knowledge" | "adapter",
              "round": int, "teacher": address, "student": address, "recipient": hex(33 bytes),
              "ephemeral": hex(33 bytes), "nonce": hex(12 bytes), "compression": "none" | "zlib"}
    plaintext = signature (65 bytes) | payload (compressed as the header says)

The header is public (the chain already says who teaches whom in which round) and is the AES-GCM
associated data, so altering any byte of it makes decryption fail.

`open_sealed` checks, in order, each before trusting what the next step reads: the size limit, the
CID, the header format and version, that the header names the expected round, teacher and student,
decryption with the student's key, the bounded decompression, the signer, and finally the payload
itself (schema, limits, shapes, finite numbers) by its format's own reader.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, replace
from typing import Literal

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.crypto import keccak

from exchange.canonical import Json, dumps_canonical, loads_canonical
from exchange.ecies import (
    Ciphertext,
    compressed_public_key,
    decrypt,
    encrypt,
    private_key_bytes,
    public_key_of,
)
from exchange.errors import (
    FormatError,
    HeaderMismatchError,
    OversizedError,
    SchemaError,
    UnknownFormatError,
    UnsafePayloadError,
    WrongRecipientError,
    WrongSignerError,
)
from exchange.schema import as_address, as_int, as_object, as_str, check_format, checksum_address

MAGIC = b"KNXS"
FORMAT = "knexa.sealed"
VERSION = 1
SIGN_DOMAIN = b"knexa.sealed-bundle.v1\x00"
SIGNATURE_BYTES = 65
MAX_HEADER_BYTES = 64 << 10

Kind = Literal["knowledge", "adapter"]
Compression = Literal["none", "zlib"]
KINDS: tuple[Kind, ...] = ("knowledge", "adapter")
#: The largest envelope a receiver accepts unless it says otherwise (256 MiB).
DEFAULT_MAX_BYTES = 256 << 20


def looks_like_pickle(data: bytes) -> bool:
    """True for a pickle (protocol 2+ starts with PROTO 0x80 n) or a zip archive (torch.save)."""
    return (len(data) >= 2 and data[0] == 0x80 and 1 <= data[1] <= 5) or data[:4] == b"PK\x03\x04"


@dataclass(frozen=True)
class SealedHeader:
    kind: Kind
    round: int
    teacher: str
    student: str
    recipient: bytes  # compressed public key the payload is encrypted to
    ephemeral: bytes
    nonce: bytes
    compression: Compression
    version: int = VERSION

    def to_json(self) -> dict[str, Json]:
        return {
            "format": FORMAT,
            "version": self.version,
            "kind": self.kind,
            "round": self.round,
            "teacher": self.teacher,
            "student": self.student,
            "recipient": self.recipient.hex(),
            "ephemeral": self.ephemeral.hex(),
            "nonce": self.nonce.hex(),
            "compression": self.compression,
        }


def signing_digest(header: SealedHeader, payload: bytes) -> bytes:
    """The 32 bytes the teacher signs: domain, header fields that identify the transfer, payload hash."""
    fields: dict[str, Json] = {
        "format": FORMAT,
        "version": header.version,
        "kind": header.kind,
        "round": header.round,
        "teacher": header.teacher,
        "student": header.student,
        "recipient": header.recipient.hex(),
        "payload_keccak256": keccak(payload).hex(),
    }
    return bytes(keccak(SIGN_DOMAIN + dumps_canonical(fields)))


# --- sealing ------------------------------------------------------------------------------------


def seal(
    payload: bytes,
    *,
    kind: Kind,
    round: int,
    teacher_key: bytes | str,
    student: str,
    recipient_public_key: bytes | str,
    compression: Compression = "none",
) -> bytes:
    """Sign `payload` with the teacher's key and encrypt it to the recipient; return the envelope bytes.

    This does not look at the payload; `market.sealing.seal_bundle` is the checked entry point for bundles.
    """
    if kind not in KINDS:
        raise SchemaError(f"unknown bundle kind {kind!r}")
    if compression not in ("none", "zlib"):
        raise SchemaError(f"unknown compression {compression!r}")
    account = Account.from_key(private_key_bytes(teacher_key))
    header = SealedHeader(
        kind=kind,
        round=as_int(round, "round", 0, 2**53),
        teacher=str(account.address),
        student=checksum_address(student, "student"),
        recipient=compressed_public_key(recipient_public_key),
        ephemeral=b"",
        nonce=b"",
        compression=compression,
    )
    signature = bytes(
        account.sign_message(encode_defunct(primitive=signing_digest(header, payload))).signature
    )
    body = zlib.compress(payload, 6) if compression == "zlib" else payload
    sealed = encrypt(signature + body, header.recipient, associated_data(header))
    return encode_envelope(
        replace(header, ephemeral=sealed.ephemeral_public_key, nonce=sealed.nonce), sealed.data
    )


def associated_data(header: SealedHeader) -> bytes:
    """What AES-GCM authenticates besides the ciphertext: the header without ephemeral key and nonce
    (those are only known after encryption, and are bound by the key derivation and GCM itself)."""
    fields = header.to_json()
    del fields["ephemeral"], fields["nonce"]
    return MAGIC + dumps_canonical(fields)


def encode_envelope(header: SealedHeader, ciphertext: bytes) -> bytes:
    header_bytes = dumps_canonical(header.to_json())
    return MAGIC + struct.pack(">I", len(header_bytes)) + header_bytes + ciphertext


# --- opening ------------------------------------------------------------------------------------


def read_header(envelope: bytes) -> tuple[SealedHeader, bytes]:
    """Parse the public header; return it with the ciphertext. Needs no key."""
    if envelope[:4] != MAGIC:
        if looks_like_pickle(envelope):
            raise UnsafePayloadError("object is a pickle, not a sealed bundle")
        raise UnknownFormatError("not a knexa sealed bundle (bad magic)")
    if len(envelope) < 8:
        raise FormatError("sealed bundle is truncated")
    (header_len,) = struct.unpack(">I", envelope[4:8])
    if header_len > min(MAX_HEADER_BYTES, len(envelope) - 8):
        raise FormatError(f"sealed header length {header_len} is out of range")
    value = loads_canonical(envelope[8 : 8 + header_len], max_bytes=MAX_HEADER_BYTES)
    if not isinstance(value, dict):
        raise SchemaError("sealed header is not an object")
    version = check_format(value, FORMAT, {VERSION})
    keys = ("format", "version", "kind", "round", "teacher", "student", "recipient", "ephemeral", "nonce")
    doc = as_object(value, "header", (*keys, "compression"))
    kind = as_str(doc["kind"], "kind")
    compression = as_str(doc["compression"], "compression")
    if kind not in KINDS:
        raise UnknownFormatError(f"unknown bundle kind {kind!r}")
    if compression not in ("none", "zlib"):
        raise UnknownFormatError(f"unknown compression {compression!r}")
    try:
        recipient = bytes.fromhex(as_str(doc["recipient"], "recipient", 66))
        ephemeral = bytes.fromhex(as_str(doc["ephemeral"], "ephemeral", 66))
        nonce = bytes.fromhex(as_str(doc["nonce"], "nonce", 24))
    except ValueError:
        raise SchemaError("recipient, ephemeral and nonce must be hex") from None
    header = SealedHeader(
        kind=kind,  # narrowed by the KINDS check above
        round=as_int(doc["round"], "round", 0, 2**53),
        teacher=as_address(doc["teacher"], "teacher"),
        student=as_address(doc["student"], "student"),
        recipient=recipient,
        ephemeral=ephemeral,
        nonce=nonce,
        compression=compression,  # type: ignore[arg-type]
        version=version,
    )
    return header, envelope[8 + header_len :]


def _inflate(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise FormatError(f"payload does not decompress: {error}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise OversizedError("decompressed payload", len(out), limit)
    if not inflater.eof:
        raise FormatError("compressed payload is truncated")
    return out


def check_header(
    header: SealedHeader, *, expected_teacher: str, expected_round: int, expected_student: str
) -> None:
    """Raise `HeaderMismatchError` unless the header names the expected round, teacher and student."""
    teacher = checksum_address(expected_teacher, "expected_teacher")
    student = checksum_address(expected_student, "expected_student")
    if (header.round, header.teacher, header.student) != (expected_round, teacher, student):
        raise HeaderMismatchError(
            f"bundle is for round {header.round}, {header.teacher} -> {header.student}; "
            f"expected round {expected_round}, {teacher} -> {student}"
        )


def verify_plaintext(
    header: SealedHeader, plaintext: bytes, *, expected_teacher: str, max_bytes: int = DEFAULT_MAX_BYTES
) -> bytes:
    """Split the decrypted plaintext, inflate it (bounded) and check the teacher's signature; the payload."""
    teacher = checksum_address(expected_teacher, "expected_teacher")
    if len(plaintext) < SIGNATURE_BYTES:
        raise FormatError("sealed payload is too short to hold a signature")
    signature, body = plaintext[:SIGNATURE_BYTES], plaintext[SIGNATURE_BYTES:]
    payload = _inflate(body, max_bytes) if header.compression == "zlib" else body
    try:
        signer = str(
            Account.recover_message(
                encode_defunct(primitive=signing_digest(header, payload)), signature=signature
            )
        )
    except Exception:  # eth_account raises several types for malformed signatures
        raise WrongSignerError(teacher, "an invalid signature") from None
    if signer != teacher:
        raise WrongSignerError(teacher, signer)
    return payload


def ciphertext_of(header: SealedHeader, ciphertext: bytes) -> Ciphertext:
    return Ciphertext(header.ephemeral, header.nonce, ciphertext)


def open_envelope(
    envelope: bytes,
    recipient_private_key: bytes | str,
    *,
    expected_teacher: str,
    expected_round: int,
    expected_student: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[SealedHeader, bytes]:
    """Check and decrypt an envelope; return its header and the signed, verified payload bytes."""
    if len(envelope) > max_bytes:
        raise OversizedError("sealed bundle", len(envelope), max_bytes)
    header, ciphertext = read_header(envelope)
    check_header(
        header,
        expected_teacher=expected_teacher,
        expected_round=expected_round,
        expected_student=expected_student,
    )
    if header.recipient != public_key_of(recipient_private_key):
        raise WrongRecipientError("the bundle is sealed to another public key")
    plaintext = decrypt(ciphertext_of(header, ciphertext), recipient_private_key, associated_data(header))
    return header, verify_plaintext(header, plaintext, expected_teacher=expected_teacher, max_bytes=max_bytes)
