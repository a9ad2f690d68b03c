"""A UnixFS importer that computes the root CID `ipfs add` gives, without an IPFS node.

Kubo's defaults (and js-ipfs's, which match them):

- the file is cut into fixed 256 KiB chunks;
- each chunk is a leaf: with CIDv1 a *raw* block (codec `raw`), with CIDv0 a dag-pb node whose
  UnixFS data is `{Type: File, Data: chunk, filesize: len(chunk)}`;
- a file of one chunk (or none) is its own root; otherwise the leaves hang in a *balanced* DAG of
  dag-pb nodes with at most 174 links each, filled left to right, every level as full as possible;
  an inner node's UnixFS data is `{Type: File, filesize: total, blocksizes: [each child's file size]}`
  and each link carries the child's CID, an empty name and the child's cumulative block size.

Left-to-right filling means the tree equals grouping the leaves 174 at a time, then those nodes 174 at
a time, and so on until one node is left; `UnixFsImporter` does that while the bytes stream in, so
memory stays at one chunk plus one pending list per level whatever the file size.

Only the byte layouts below (protobuf, proto2, fields in tag order, dag-pb links before data) are
written here; CIDs, multihashes and multibase come from `multiformats`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from multiformats import CID

CHUNK_SIZE = 262_144  # 256 KiB, Kubo's `size-262144` chunker
MAX_LINKS = 174  # links per inner node in Kubo's balanced layout

_SHA2_256 = 0x12
_UNIXFS_FILE = 2

# --- protobuf wire format (only what dag-pb and UnixFS need) --------------------------------------


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128, the protobuf varint."""
    if value < 0:
        raise ValueError("varint must be non-negative")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return encode_varint((field << 3) | wire_type)


def varint_field(field: int, value: int) -> bytes:
    return _key(field, 0) + encode_varint(value)


def bytes_field_prefix(field: int, length: int) -> bytes:
    """Tag and length of a length-delimited field, so large values can be hashed without a copy."""
    return _key(field, 2) + encode_varint(length)


def bytes_field(field: int, value: bytes) -> bytes:
    return bytes_field_prefix(field, len(value)) + value


# --- nodes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Child:
    """A finished node, as its parent's link needs it."""

    cid: CID
    file_size: int  # bytes of file content under this node
    tsize: int  # bytes of all blocks under this node, itself included (the dag-pb link's Tsize)


def _sha256_multihash(*parts: bytes | memoryview) -> bytes:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return bytes([_SHA2_256, 32]) + digest.digest()


def _dag_pb_cid(version: int, multihash: bytes) -> CID:
    if version == 0:
        return CID("base58btc", 0, "dag-pb", multihash)
    return CID("base32", 1, "dag-pb", multihash)


def leaf(chunk: bytes | memoryview, cid_version: int, raw_leaves: bool) -> Child:
    """A leaf block for one chunk: a raw block, or a dag-pb UnixFS File node holding the chunk."""
    if raw_leaves:
        return Child(CID("base32", 1, "raw", _sha256_multihash(chunk)), len(chunk), len(chunk))
    unixfs_head = varint_field(1, _UNIXFS_FILE) + (bytes_field_prefix(2, len(chunk)) if len(chunk) else b"")
    unixfs_tail = varint_field(3, len(chunk))
    unixfs_len = len(unixfs_head) + len(chunk) + len(unixfs_tail)
    node_head = bytes_field_prefix(1, unixfs_len)  # PBNode.Data
    block_len = len(node_head) + unixfs_len
    multihash = _sha256_multihash(node_head, unixfs_head, chunk, unixfs_tail)
    return Child(_dag_pb_cid(cid_version, multihash), len(chunk), block_len)


def encode_inner_node(children: list[Child]) -> bytes:
    """The dag-pb bytes of an inner UnixFS File node over `children`."""
    links = b"".join(
        bytes_field(2, bytes_field(1, bytes(child.cid)) + bytes_field(2, b"") + varint_field(3, child.tsize))
        for child in children
    )
    unixfs = varint_field(1, _UNIXFS_FILE) + varint_field(3, sum(child.file_size for child in children))
    unixfs += b"".join(varint_field(4, child.file_size) for child in children)
    return links + bytes_field(1, unixfs)


def inner_node(children: list[Child], cid_version: int) -> Child:
    block = encode_inner_node(children)
    return Child(
        _dag_pb_cid(cid_version, _sha256_multihash(block)),
        sum(child.file_size for child in children),
        len(block) + sum(child.tsize for child in children),
    )


# --- the importer -------------------------------------------------------------------------------


class UnixFsImporter:
    """Feed bytes with `update`, then `finish` returns the root as `ipfs add` would compute it.

    `raw_leaves` defaults to True for CIDv1 and False for CIDv0, as in Kubo (`--cid-version=1`
    implies `--raw-leaves`). CIDv0 with raw leaves mixes CID versions and is not supported.
    """

    def __init__(self, cid_version: int = 1, raw_leaves: bool | None = None) -> None:
        if cid_version not in (0, 1):
            raise ValueError(f"CID version must be 0 or 1, not {cid_version}")
        if raw_leaves is None:
            raw_leaves = cid_version == 1
        if raw_leaves and cid_version == 0:
            raise ValueError("raw leaves need CIDv1")
        self.cid_version = cid_version
        self.raw_leaves = raw_leaves
        self._buffer = bytearray()
        self._levels: list[list[Child]] = [[]]  # pending children per level, leaves at 0
        self._leaves = 0
        self._size = 0
        self._finished = False

    @property
    def size(self) -> int:
        """Bytes fed so far."""
        return self._size

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if self._finished:
            raise RuntimeError("importer already finished")
        view = memoryview(data).cast("B")
        self._size += len(view)
        if self._buffer:
            # Top up the partial chunk first; whole chunks are then cut straight from `data`.
            take = min(CHUNK_SIZE - len(self._buffer), len(view))
            self._buffer += view[:take]
            view = view[take:]
            if len(self._buffer) < CHUNK_SIZE:
                return
            self._add_leaf(bytes(self._buffer))
            self._buffer.clear()
        while len(view) >= CHUNK_SIZE:
            self._add_leaf(view[:CHUNK_SIZE])  # hashed in place, no copy
            view = view[CHUNK_SIZE:]
        self._buffer += view

    def _add_leaf(self, chunk: bytes | memoryview) -> None:
        self._leaves += 1
        self._push(0, leaf(chunk, self.cid_version, self.raw_leaves))

    def _push(self, level: int, child: Child) -> None:
        pending = self._levels[level]
        pending.append(child)
        if len(pending) == MAX_LINKS:
            # A full node never changes again: close it now and hand it to the level above.
            node = inner_node(pending, self.cid_version)
            pending.clear()
            if level + 1 == len(self._levels):
                self._levels.append([])
            self._push(level + 1, node)

    def finish(self) -> Child:
        if self._finished:
            raise RuntimeError("importer already finished")
        self._finished = True
        if self._buffer or self._leaves == 0:
            self._add_leaf(bytes(self._buffer))
            self._buffer.clear()
        if self._leaves == 1:
            # A single chunk is its own root (for CIDv0 a UnixFS File node, for CIDv1 a raw block).
            return self._levels[0][0]
        level = 0
        while True:
            pending = self._levels[level]
            above = any(self._levels[level + 1 :])
            if len(pending) == 1 and not above:
                return pending[0]
            if pending:
                if level + 1 == len(self._levels):
                    self._levels.append([])
                self._levels[level + 1].append(inner_node(pending, self.cid_version))
                pending.clear()
            level += 1


def import_bytes(chunks: Iterable[bytes], cid_version: int = 1, raw_leaves: bool | None = None) -> Child:
    """The root of `ipfs add` over the concatenation of `chunks`."""
    importer = UnixFsImporter(cid_version, raw_leaves)
    for chunk in chunks:
        importer.update(chunk)
    return importer.finish()


def iter_file(handle: BinaryIO, block: int = 4 * CHUNK_SIZE) -> Iterable[bytes]:
    while data := handle.read(block):
        yield data
