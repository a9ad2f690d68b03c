"""Canonical JSON: one byte string per value, so the same document always has the same CID.

The canonical form is: UTF-8, object keys sorted by code point, no whitespace, no duplicate keys,
integers within +-2**53 (exact in every JSON reader), floats written as Python's `repr` (the
shortest text that reads back as the same float64, so values round-trip bit for bit), and no NaN or
infinity. `loads_canonical` refuses bytes that are valid JSON but not in this form: otherwise two
byte strings (two CIDs) could carry the same document.
"""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn, TypeAlias

from exchange.errors import NonCanonicalError, NonFiniteError, OversizedError, SchemaError

Json: TypeAlias = dict[str, "Json"] | list["Json"] | str | int | float | bool | None

MAX_SAFE_INTEGER = 2**53
DEFAULT_MAX_DOCUMENT_BYTES = 4 << 20  # 4 MiB


def _check(value: Any, path: str) -> None:
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise SchemaError(f"{path}: integer {value} is outside +-2**53")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NonFiniteError(f"{path}: {value} is not a finite number")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SchemaError(f"{path}: object key {key!r} is not a string")
            _check(item, f"{path}.{key}")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    raise SchemaError(f"{path}: {type(value).__name__} is not a JSON value")


def dumps_canonical(value: Json) -> bytes:
    """The canonical bytes of a JSON value (see the module docstring)."""
    _check(value, "$")
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:  # a lone surrogate in a string
        raise SchemaError(f"string is not valid Unicode: {error}") from None


def _reject_constant(name: str) -> NoReturn:
    raise NonFiniteError(f"{name} is not allowed in canonical JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # e.g. 1e400 reads as infinity
        raise NonFiniteError(f"{text} does not fit a finite float64")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise NonCanonicalError(f"duplicate key {key!r}")
        result[key] = value
    return result


def loads_canonical(data: bytes, *, max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES) -> Json:
    """Parse canonical JSON bytes; raise a `FormatError` subclass unless they are exactly canonical."""
    if len(data) > max_bytes:
        raise OversizedError("JSON document", len(data), max_bytes)
    try:
        text = data.decode("utf-8")
        value: Json = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_pairs_hook=_no_duplicates,
        )
    except UnicodeDecodeError as error:
        raise SchemaError(f"document is not UTF-8: {error}") from None
    except RecursionError:
        raise SchemaError("document nests too deeply") from None
    except json.JSONDecodeError as error:
        raise SchemaError(f"document is not JSON: {error}") from None
    if dumps_canonical(value) != data:
        raise NonCanonicalError("document is valid JSON but not in canonical form")
    return value
