"""The UnixFS importer and CID helpers, without a node (the parity tests compare with a real one)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from multiformats import CID

from exchange.cid import cid_of, normalize_cid, parse_cid, verify_content, verify_file
from exchange.errors import CidMismatchError, InvalidCidError
from exchange.unixfs import CHUNK_SIZE, UnixFsImporter, encode_inner_node, encode_varint, leaf


def random_bytes(size: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).bytes(size)


def test_cids_published_by_kubo() -> None:
    # Values printed by `ipfs add` (Kubo) and quoted throughout the IPFS documentation.
    assert cid_of(b"", 0) == "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
    assert cid_of(b"", 1) == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    assert cid_of(b"hello world\n", 0) == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


def test_single_chunk_cidv1_is_the_raw_block_hash() -> None:
    data = random_bytes(CHUNK_SIZE)
    cid = parse_cid(cid_of(data, 1))
    assert cid.codec.name == "raw"
    assert cid.raw_digest == hashlib.sha256(data).digest()


def test_two_chunks_make_a_dag_pb_root_whose_links_are_the_leaves() -> None:
    data = random_bytes(CHUNK_SIZE + 10)
    leaves = [leaf(data[:CHUNK_SIZE], 1, True), leaf(data[CHUNK_SIZE:], 1, True)]
    block = encode_inner_node(leaves)
    root = parse_cid(cid_of(data, 1))
    assert root.codec.name == "dag-pb"
    assert root.raw_digest == hashlib.sha256(block).digest()
    # dag-pb: links (field 2) come before the UnixFS data (field 1); each link holds the leaf CID.
    assert block[0] == 0x12
    assert bytes(leaves[0].cid) in block
    assert bytes(leaves[1].cid) in block
    assert block.endswith(encode_varint(CHUNK_SIZE) + bytes([0x20]) + encode_varint(10))


@pytest.mark.parametrize("version", [0, 1])
def test_streaming_in_any_pieces_gives_the_same_cid(version: int) -> None:
    data = random_bytes(3 * CHUNK_SIZE + 12_345, seed=1)
    whole = cid_of(data, version)  # type: ignore[arg-type]
    for cuts in ([1], [CHUNK_SIZE - 1, CHUNK_SIZE + 1], [7, 100_000, 500_001, 700_000]):
        importer = UnixFsImporter(version)
        start = 0
        for cut in [*cuts, len(data)]:
            importer.update(data[start:cut])
            start = cut
        assert str(importer.finish().cid) == whole
        assert importer.size == len(data)


def test_varint_matches_protobuf() -> None:
    assert encode_varint(0) == b"\x00"
    assert encode_varint(127) == b"\x7f"
    assert encode_varint(128) == b"\x80\x01"
    assert encode_varint(CHUNK_SIZE) == b"\x80\x80\x10"
    with pytest.raises(ValueError, match="non-negative"):
        encode_varint(-1)


def test_cidv0_with_raw_leaves_is_refused() -> None:
    with pytest.raises(ValueError, match="CIDv1"):
        UnixFsImporter(0, raw_leaves=True)


def test_verify_accepts_the_right_bytes_and_names_the_wrong_cid() -> None:
    data = random_bytes(CHUNK_SIZE * 2 + 1, seed=2)
    for version in (0, 1):
        cid = cid_of(data, version)
        assert verify_content(data, cid) == cid
        with pytest.raises(CidMismatchError) as caught:
            verify_content(data[:-1], cid)
        assert caught.value.expected == cid
        assert caught.value.actual == cid_of(data[:-1], version)
        flipped = bytearray(data)
        flipped[CHUNK_SIZE + 5] ^= 0x01
        with pytest.raises(CidMismatchError):
            verify_content(bytes(flipped), cid)


def test_verify_accepts_cidv1_dag_pb_without_raw_leaves(tmp_path: Path) -> None:
    # `ipfs add --cid-version=1 --raw-leaves=false` is a legitimate (if rare) producer.
    data = random_bytes(CHUNK_SIZE + 1, seed=3)
    importer = UnixFsImporter(1, raw_leaves=False)
    importer.update(data)
    cid = str(importer.finish().cid)
    assert cid != cid_of(data, 1)
    assert verify_content(data, cid) == cid
    (tmp_path / "blob").write_bytes(data)
    assert verify_file(tmp_path / "blob", cid) == cid


def test_cids_normalize_to_the_base_kubo_prints() -> None:
    cid = cid_of(b"abc", 1)
    base58 = str(CID.decode(cid).set(base="base58btc"))
    assert base58.startswith("z")
    assert normalize_cid(base58) == cid


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Qm",
        "not a cid",
        "bafy" + "a" * 300,
        "bagaaierasords4njcts6vs7qvdjfcvgnume4hqohf65zsfguprqphs3icwea",
    ],
)
def test_invalid_cids_are_refused(value: str) -> None:
    with pytest.raises(InvalidCidError):
        parse_cid(value)
