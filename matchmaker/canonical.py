"""Canonical encodings for everything the matchmaker commits to (digests that go on chain).

Two rules make a digest reproducible by anyone:

* JSON is written with sorted keys, no whitespace, UTF-8, and floats in Python's shortest
  round-trip ``repr`` (so ``json.loads`` gives back the very same float64). NaN and
  infinities are refused: they have no canonical JSON form.
* Arrays are hashed as little-endian float64 (or int64) bytes in C order, after a header
  that carries their shape, so two arrays with the same bytes but different shapes differ.
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

import numpy as np
from numpy.typing import NDArray


def canonical_json(obj: Any) -> bytes:
    """Serialise ``obj`` to canonical JSON bytes (sorted keys, compact, no NaN/inf)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def sha256_hex(data: bytes) -> str:
    """Lower-case hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def pack_int(value: int) -> bytes:
    """A signed 64-bit little-endian integer."""
    return struct.pack("<q", value)


def pack_float(value: float) -> bytes:
    """An IEEE-754 float64, little-endian."""
    return struct.pack("<d", value)


def pack_array(array: NDArray[Any]) -> bytes:
    """Shape header + little-endian C-order bytes of a float64 or int64 array."""
    if array.dtype.kind == "f":
        data = np.ascontiguousarray(array, dtype="<f8").tobytes()
        tag = b"f8"
    elif array.dtype.kind in "iu":
        data = np.ascontiguousarray(array, dtype="<i8").tobytes()
        tag = b"i8"
    else:
        raise TypeError(f"cannot pack an array of dtype {array.dtype}")
    header = tag + pack_int(array.ndim) + b"".join(pack_int(int(n)) for n in array.shape)
    return header + data
