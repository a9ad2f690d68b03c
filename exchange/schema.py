"""Typed field readers for the JSON formats: each either returns a value of the promised type or
raises `SchemaError` naming the offending path. Unknown keys are errors, not ignored: a document
that carries fields this version does not define must declare a newer format version.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Collection

from eth_utils.address import is_address, to_checksum_address

from exchange.canonical import Json, dumps_canonical
from exchange.cid import DEFAULT_CID_VERSION, CidVersion, cid_of, normalize_cid
from exchange.errors import (
    ExchangeError,
    NonFiniteError,
    OutOfBoundsError,
    OversizedError,
    SchemaError,
    UnknownFormatError,
)

HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
MAX_NAME = 128


class CanonicalDocument:
    """A document whose bytes are the canonical JSON of `to_json` and whose address is the CID of
    those bytes: a subclass defines only `to_json`, so its bytes and its CID cannot drift apart."""

    def to_json(self) -> dict[str, Json]:
        raise NotImplementedError(f"{type(self).__name__} must define to_json")

    def to_bytes(self) -> bytes:
        return dumps_canonical(self.to_json())

    def cid(self, cid_version: CidVersion = DEFAULT_CID_VERSION) -> str:
        return cid_of(self.to_bytes(), cid_version)


def as_object(
    value: Json, path: str, keys: Collection[str], optional: Collection[str] = ()
) -> dict[str, Json]:
    """`value` as an object with exactly `keys` (plus any of `optional`)."""
    if not isinstance(value, dict):
        raise SchemaError(f"{path}: expected an object")
    missing = set(keys) - value.keys()
    extra = value.keys() - set(keys) - set(optional)
    if missing:
        raise SchemaError(f"{path}: missing {sorted(missing)}")
    if extra:
        raise SchemaError(f"{path}: unknown fields {sorted(extra)}")
    return value


def as_list(value: Json, path: str, max_items: int = 1 << 20) -> list[Json]:
    if not isinstance(value, list):
        raise SchemaError(f"{path}: expected a list")
    if len(value) > max_items:
        raise OversizedError(path, len(value), max_items, "items")
    return value


def as_str(value: Json, path: str, max_len: int = MAX_NAME, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise SchemaError(f"{path}: expected a string")
    if not empty and not value:
        raise SchemaError(f"{path}: must not be empty")
    if len(value) > max_len:
        raise SchemaError(f"{path}: longer than {max_len} characters")
    return value


def as_int(value: Json, path: str, low: int | None = None, high: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SchemaError(f"{path}: expected an integer")
    if (low is not None and value < low) or (high is not None and value > high):
        raise OutOfBoundsError(f"{path}: {value} outside [{low}, {high}]")
    return value


def as_float(value: Json, path: str, low: float | None = None, high: float | None = None) -> float:
    """A JSON float (written with a point or exponent): an integer literal is not accepted, because
    `1` and `1.0` would be two encodings of the same value."""
    if not isinstance(value, float):
        raise SchemaError(f"{path}: expected a float (written like 1.0)")
    return check_float(value, path, low, high)


def check_float(value: float, path: str, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaError(f"{path}: expected a number")
    value = float(value)
    if not math.isfinite(value):
        raise NonFiniteError(f"{path}: {value} is not finite")
    if (low is not None and value < low) or (high is not None and value > high):
        raise OutOfBoundsError(f"{path}: {value} outside [{low}, {high}]")
    return value


def as_address(value: Json, path: str) -> str:
    """An Ethereum address, which must be written in its EIP-55 checksum form."""
    text = as_str(value, path, 42)
    if checksum_address(text, path) != text:
        raise SchemaError(f"{path}: address must be EIP-55 checksummed")
    return text


def checksum_address(value: str, path: str = "address") -> str:
    if not isinstance(value, str) or not is_address(value):
        raise SchemaError(f"{path}: {value!r} is not an Ethereum address")
    return _checksummed(value)


@functools.lru_cache(maxsize=1 << 16)
def _checksummed(value: str) -> str:
    """EIP-55 form of a valid address; cached, since a decision record repeats each address N times
    and the checksum costs a keccak."""
    return str(to_checksum_address(value))


def as_digest(value: Json, path: str) -> str:
    text = as_str(value, path, 64)
    return check_digest(text, path)


def check_digest(value: str, path: str) -> str:
    if not isinstance(value, str) or not HEX_DIGEST.fullmatch(value):
        raise SchemaError(f"{path}: expected 64 lowercase hex digits (no 0x)")
    return value


def as_cid(value: Json, path: str) -> str:
    text = as_str(value, path, 200)
    try:
        cid = normalize_cid(text)
    except ExchangeError as error:
        raise SchemaError(f"{path}: {error}") from None
    if cid != text:
        raise SchemaError(f"{path}: CID must be written in its canonical base ({cid})")
    return text


def check_format(document: dict[str, Json], name: str, versions: Collection[int]) -> int:
    """The document's version, after checking `format` names this format."""
    found = document.get("format")
    if found != name:
        raise UnknownFormatError(f"expected format {name!r}, found {found!r}")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version not in versions:
        raise UnknownFormatError(f"{name} version {version!r} is not supported (known: {sorted(versions)})")
    return version
