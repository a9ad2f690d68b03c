"""ECIES over secp256k1: encrypt to a 33-byte compressed public key.

Per message: a fresh ephemeral key pair; the shared secret is libsecp256k1's ECDH (SHA-256 of the
compressed shared point, via coincurve); HKDF-SHA256 over it, salted with both public keys, gives a
256-bit AES-GCM key; `aad` binds the caller's header to the ciphertext. Because the key is new every
time, the random 96-bit nonce never repeats under one key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from coincurve import PrivateKey, PublicKey
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from exchange.errors import DecryptionError, SealError

_INFO = b"knexa/ecies/v1/aes-256-gcm"
NONCE_BYTES = 12


@dataclass(frozen=True)
class Ciphertext:
    ephemeral_public_key: bytes  # 33 bytes, compressed
    nonce: bytes  # 12 bytes
    data: bytes  # AES-GCM ciphertext with its 16-byte tag


def compressed_public_key(key: bytes | str) -> bytes:
    """Normalize a secp256k1 public key (33 or 65 bytes, or hex of either) to 33 compressed bytes."""
    raw = bytes.fromhex(key.removeprefix("0x")) if isinstance(key, str) else bytes(key)
    if len(raw) == 64:  # an Ethereum-style key without the 0x04 prefix
        raw = b"\x04" + raw
    try:
        return bytes(PublicKey(raw).format(compressed=True))
    except (ValueError, TypeError) as error:
        raise SealError(f"not a secp256k1 public key: {error}") from None


def private_key_bytes(key: bytes | str) -> bytes:
    raw = bytes.fromhex(key.removeprefix("0x")) if isinstance(key, str) else bytes(key)
    if len(raw) != 32:
        raise SealError("a secp256k1 private key is 32 bytes")
    return raw


def public_key_of(private_key: bytes | str) -> bytes:
    """The 33-byte compressed public key an organization registers for receiving bundles."""
    try:
        return bytes(PrivateKey(private_key_bytes(private_key)).public_key.format(compressed=True))
    except ValueError as error:
        raise SealError(f"invalid private key: {error}") from None


def derive_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    """The AES-256-GCM key of an envelope from its ECDH shared secret and both public keys."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=_INFO).derive(shared)


def encrypt(plaintext: bytes, recipient_public_key: bytes, aad: bytes) -> Ciphertext:
    recipient = compressed_public_key(recipient_public_key)
    ephemeral = PrivateKey()
    ephemeral_public = bytes(ephemeral.public_key.format(compressed=True))
    shared = ephemeral.ecdh(recipient)
    nonce = os.urandom(NONCE_BYTES)
    key = derive_key(shared, ephemeral_public, recipient)
    return Ciphertext(ephemeral_public, nonce, AESGCM(key).encrypt(nonce, plaintext, aad))


def decrypt(ciphertext: Ciphertext, recipient_private_key: bytes | str, aad: bytes) -> bytes:
    """Raises `DecryptionError` for a wrong key or any altered byte (ciphertext, nonce, key or aad)."""
    private = PrivateKey(private_key_bytes(recipient_private_key))
    recipient = bytes(private.public_key.format(compressed=True))
    try:
        shared = private.ecdh(compressed_public_key(ciphertext.ephemeral_public_key))
    except SealError:
        raise DecryptionError("the envelope's ephemeral key is not a curve point") from None
    if len(ciphertext.nonce) != NONCE_BYTES:
        raise DecryptionError("bad nonce length")
    return decrypt_with_key(ciphertext, derive_key(shared, ciphertext.ephemeral_public_key, recipient), aad)


def decrypt_with_key(ciphertext: Ciphertext, key: bytes, aad: bytes) -> bytes:
    """Decrypt with the envelope's symmetric key itself (e.g. derived from a disclosed shared point)."""
    if len(ciphertext.nonce) != NONCE_BYTES:
        raise DecryptionError("bad nonce length")
    try:
        return AESGCM(key).decrypt(ciphertext.nonce, ciphertext.data, aad)
    except InvalidTag:
        raise DecryptionError("cannot decrypt: wrong recipient key, or the envelope was altered") from None
