"""Content identifiers: compute the CID `ipfs add` would give, parse CIDs, verify bytes against one.

knexa writes CIDv1 (base32, raw leaves) by default; CIDv0 (`Qm...`) is computed and verified too,
because a Kubo node adds with CIDv0 unless told otherwise.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Literal

from multiformats import CID

from exchange.errors import CidMismatchError, InvalidCidError
from exchange.unixfs import UnixFsImporter, import_bytes, iter_file

CidVersion = Literal[0, 1]
DEFAULT_CID_VERSION: CidVersion = 1


def cid_of(data: bytes | Iterable[bytes], cid_version: CidVersion = DEFAULT_CID_VERSION) -> str:
    """The CID `ipfs add --cid-version=N` returns for these bytes (an iterable is concatenated)."""
    chunks: Iterable[bytes] = (data,) if isinstance(data, bytes) else data
    return str(import_bytes(chunks, cid_version).cid)


def cid_of_file(path: Path, cid_version: CidVersion = DEFAULT_CID_VERSION) -> str:
    """`cid_of` for a file, streamed: memory stays small whatever its size."""
    with path.open("rb") as handle:
        return str(import_bytes(iter_file(handle), cid_version).cid)


def parse_cid(value: str | CID) -> CID:
    """Decode a CID string; raise `InvalidCidError` unless it is a sha2-256 dag-pb or raw CID."""
    if isinstance(value, CID):
        cid = value
    else:
        if not isinstance(value, str) or not value or len(value) > 200:
            raise InvalidCidError(f"not a CID: {value!r}")
        try:
            cid = CID.decode(value.strip())
        except Exception as error:  # multiformats raises several unrelated types
            raise InvalidCidError(f"not a CID: {value!r} ({error})") from None
    if cid.hashfun.name != "sha2-256":
        raise InvalidCidError(f"unsupported hash function {cid.hashfun.name} in {value}")
    if cid.codec.name not in ("dag-pb", "raw"):
        raise InvalidCidError(f"unsupported codec {cid.codec.name} in {value}")
    return cid


def normalize_cid(value: str | CID) -> str:
    """The canonical text of a CID: base58btc for v0, base32 for v1 (what Kubo prints)."""
    if isinstance(value, str):
        return _normalized_text(value)
    cid = parse_cid(value)
    return str(cid.set(base="base58btc" if cid.version == 0 else "base32"))


@functools.lru_cache(maxsize=1 << 14)
def _normalized_text(value: str) -> str:
    """`normalize_cid` of a text CID, cached: multibase encoding is slow, and records repeat CIDs.
    (An invalid CID raises and is not cached.)"""
    cid = parse_cid(value)
    return str(cid.set(base="base58btc" if cid.version == 0 else "base32"))


class _RawBlockHash:
    """A `raw` CID addresses one block: its CID is sha2-256 of the bytes, whatever their size."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def update(self, data: bytes) -> None:
        self._digest.update(data)

    def result(self) -> str:
        return str(CID("base32", 1, "raw", bytes([0x12, 32]) + self._digest.digest()))


class _DagHash:
    def __init__(self, cid_version: CidVersion, raw_leaves: bool) -> None:
        self._importer = UnixFsImporter(cid_version, raw_leaves)

    def update(self, data: bytes) -> None:
        self._importer.update(data)

    def result(self) -> str:
        return str(self._importer.finish().cid)


def _layouts(cid: CID) -> list[Callable[[], _RawBlockHash | _DagHash]]:
    """The ways `cid` may have been built, most likely first. A dag-pb CIDv1 usually has raw leaves
    (Kubo's and knexa's default) but `--raw-leaves=false` is legitimate, so it is tried second."""
    if cid.codec.name == "raw":
        return [_RawBlockHash]
    if cid.version == 0:
        return [lambda: _DagHash(0, False)]
    return [lambda: _DagHash(1, True), lambda: _DagHash(1, False)]


def cid_text(binary: bytes) -> str:
    """The canonical text form of a CID given in its binary form (as chain events carry it)."""
    return _cid_text(bytes(binary))


@functools.lru_cache(maxsize=1 << 14)
def _cid_text(binary: bytes) -> str:
    try:
        return normalize_cid(CID.decode(binary))
    except InvalidCidError:
        raise
    except Exception as error:  # multiformats raises several types for malformed bytes
        raise InvalidCidError(f"not a binary CID: {binary[:16].hex()}...: {error}") from None


def cid_binary(text: str | CID) -> bytes:
    """The binary form of a CID, as the contract takes it."""
    return bytes(parse_cid(text))


def verify_stream(chunks: Callable[[], Iterable[bytes]], expected: str | CID) -> str:
    """Check the bytes `chunks()` yields against `expected`; return the normalized CID.

    `chunks` is called once per candidate layout (see `_layouts`), so pass something re-readable
    (bytes in memory, a file re-opened). Raises `CidMismatchError` naming the CID the bytes do have.
    """
    cid = parse_cid(expected)
    wanted = normalize_cid(cid)
    first = ""
    for make in _layouts(cid):
        digest = make()
        for chunk in chunks():
            digest.update(chunk)
        actual = digest.result()
        if actual == wanted:
            return wanted
        first = first or actual
    raise CidMismatchError(wanted, first)


def verify_content(data: bytes, expected: str | CID) -> str:
    """Check that `data` is the content addressed by `expected`; return the normalized CID.

    Raises `CidMismatchError` (truncated, extended or altered bytes) or `InvalidCidError`.
    """
    return verify_stream(lambda: (data,), expected)


def verify_file(path: Path, expected: str | CID) -> str:
    """`verify_content` for a file, streamed."""

    def chunks() -> Iterator[bytes]:
        with Path(path).open("rb") as handle:
            yield from iter_file(handle)

    return verify_stream(chunks, expected)
