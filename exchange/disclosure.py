"""Disclosing the key of one sealed envelope, verifiably, without the recipient's private key.

An envelope is encrypted under a key derived from the ECDH shared point `S = d * E` of the
recipient's private key `d` and the envelope's ephemeral public key `E` (`exchange.ecies`). A
recipient that wants a third party to open exactly that envelope (to prove it defective) reveals
`S` together with a Chaum-Pedersen proof that `log_G(P) == log_E(S)`, where `P = d * G` is its
registered public key. The proof shows the point is the true shared point (so "it does not
decrypt" is a fact, not the recipient's claim), and reveals nothing about `d` beyond what `S`
reveals: `S` opens this envelope only, because every envelope has its own ephemeral key.

Proof (deterministic, so the same disclosure always has the same bytes and CID):
    k = H("nonce", d, E) mod n;  A = k * G;  B = k * E
    c = H("challenge", P, E, S, A, B) mod n;  z = k + c * d mod n
Check: z * G == A + c * P and z * E == B + c * S. H is SHA-256 over the domain tag and the
33-byte compressed points (32-byte big-endian scalars).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from coincurve import PrivateKey, PublicKey

from exchange.ecies import compressed_public_key, derive_key, private_key_bytes
from exchange.errors import SealError

#: The order of secp256k1's group.
CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_DOMAIN = b"knexa/ecies/v1/disclosure/"


class DisclosureError(SealError):
    """A disclosed shared point is not proven to be the envelope's (bad point, bad proof)."""


@dataclass(frozen=True)
class KeyDisclosure:
    """The shared point of one envelope and the proof that it is the recipient's (33, 33, 33, 32 bytes)."""

    shared_point: bytes
    proof_a: bytes
    proof_b: bytes
    proof_z: bytes


def _scalar(tag: bytes, *parts: bytes) -> int:
    digest = hashlib.sha256(_DOMAIN + tag + b"".join(parts)).digest()
    return int.from_bytes(digest, "big") % CURVE_ORDER


def _point(raw: bytes, what: str) -> PublicKey:
    if len(raw) != 33:
        raise DisclosureError(f"{what} must be a 33-byte compressed point")
    try:
        return PublicKey(raw)
    except (ValueError, TypeError):
        raise DisclosureError(f"{what} is not a point of secp256k1") from None


def disclose(recipient_private_key: bytes | str, ephemeral_public_key: bytes) -> KeyDisclosure:
    """As the recipient, reveal the shared point of the envelope with `ephemeral_public_key`."""
    secret = private_key_bytes(recipient_private_key)
    d = int.from_bytes(secret, "big")
    public = bytes(PrivateKey(secret).public_key.format(compressed=True))
    ephemeral = _point(compressed_public_key(ephemeral_public_key), "the ephemeral key")
    e_bytes = bytes(ephemeral.format(compressed=True))
    shared = bytes(ephemeral.multiply(secret).format(compressed=True))
    k = _scalar(b"nonce", secret, e_bytes)
    if k == 0:  # probability 2^-256
        raise DisclosureError("degenerate nonce")
    k_bytes = k.to_bytes(32, "big")
    a = bytes(PrivateKey(k_bytes).public_key.format(compressed=True))
    b = bytes(ephemeral.multiply(k_bytes).format(compressed=True))
    c = _scalar(b"challenge", public, e_bytes, shared, a, b)
    z = (k + c * d) % CURVE_ORDER
    return KeyDisclosure(shared, a, b, z.to_bytes(32, "big"))


def verify_disclosure(
    disclosure: KeyDisclosure, recipient_public_key: bytes, ephemeral_public_key: bytes
) -> None:
    """Raise `DisclosureError` unless the disclosure is the true shared point of that envelope."""
    public = _point(compressed_public_key(recipient_public_key), "the recipient key")
    ephemeral = _point(ephemeral_public_key, "the ephemeral key")
    shared = _point(disclosure.shared_point, "the shared point")
    a = _point(disclosure.proof_a, "proof.a")
    b = _point(disclosure.proof_b, "proof.b")
    if len(disclosure.proof_z) != 32:
        raise DisclosureError("proof.z must be a 32-byte scalar")
    z = int.from_bytes(disclosure.proof_z, "big")
    c = _scalar(
        b"challenge",
        bytes(public.format(compressed=True)),
        ephemeral_public_key,
        disclosure.shared_point,
        disclosure.proof_a,
        disclosure.proof_b,
    )
    if not 0 < z < CURVE_ORDER or c == 0:
        raise DisclosureError("the proof's scalars are out of range")
    c_bytes, z_bytes = c.to_bytes(32, "big"), disclosure.proof_z
    try:
        left_g = bytes(PrivateKey(z_bytes).public_key.format(compressed=True))
        right_g = bytes(PublicKey.combine_keys([a, public.multiply(c_bytes)]).format(compressed=True))
        left_e = bytes(ephemeral.multiply(z_bytes).format(compressed=True))
        right_e = bytes(PublicKey.combine_keys([b, shared.multiply(c_bytes)]).format(compressed=True))
    except (ValueError, TypeError):  # a sum at infinity: no valid proof produces one
        raise DisclosureError("the proof does not verify") from None
    if left_g != right_g or left_e != right_e:
        raise DisclosureError("the proof does not verify: the point is not this envelope's shared point")


def envelope_key(
    disclosure: KeyDisclosure, recipient_public_key: bytes, ephemeral_public_key: bytes
) -> bytes:
    """The AES-256-GCM key of the envelope, derived from a disclosed (verified) shared point."""
    shared_secret = hashlib.sha256(disclosure.shared_point).digest()  # libsecp256k1's ECDH hash
    return derive_key(shared_secret, ephemeral_public_key, compressed_public_key(recipient_public_key))
