"""Known answers for the UnixFS importer: CIDs recorded once from a real IPFS node, and node bytes
written out by hand.

The CIDs below were printed by js-ipfs 0.66.1 (`ipfs add`, `--cid-version` 0 without raw leaves,
and 1 with raw leaves) for the bytes `random.Random(size).randbytes(size)`. They are constants: no
node runs here, and nothing in this file computes an expected value with the code under test.
The last size needs 176 leaves, more than one inner node's 174 links, so its root sits two levels up.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
from multiformats import CID, multihash

from exchange.cid import (
    cid_binary,
    cid_of,
    cid_of_file,
    cid_text,
    normalize_cid,
    parse_cid,
    verify_content,
    verify_file,
)
from exchange.errors import CidMismatchError, InvalidCidError
from exchange.unixfs import (
    CHUNK_SIZE,
    MAX_LINKS,
    Child,
    UnixFsImporter,
    encode_inner_node,
    encode_varint,
    import_bytes,
    inner_node,
    iter_file,
    leaf,
)

RECORDED: dict[tuple[int, int], str] = {
    (262_145, 0): "QmdkAszdeWKht9nXSzPKGUYvUqpMfm325GuCn1pZnTa9ja",
    (262_145, 1): "bafybeidbbs6ocod3v27jtr4uhvc6n55y3gbrtur3bvjsnraudtbxkozi2y",
    (798_777, 0): "QmX4Lghitv4pw8wFpnbbiygK9D2taN9fRmotw6iEFRXBLB",
    (798_777, 1): "bafybeibeloes7dkoyjwaiqeooa6ef3gqdveyc3xzg2rpyzvuh4g6ojdhku",
    (4_194_304, 0): "QmZP4SnZqCh8TCdCmdrocyG9tDXFwbc2qMdkd2SueKr4us",
    (4_194_304, 1): "bafybeifo2qu4s3drbp3b7qlckacx7ulssc5dtf6p2e35nxts6mauyxmkoa",
    (45_875_299, 0): "QmPmbMSyTjHa2zF8FofuhdUwf8MtqfjiSpHcbEGPpxqaQi",
    (45_875_299, 1): "bafybeid7w4fczfjaiibjwjpydm3hhmxwzjqn6uo3o7iu4jw3dzl7vtygci",
}
SIZES = sorted({size for size, _ in RECORDED})

# sha2-256 of b"a" and of b"b", written out.
DIGEST_A = bytes.fromhex("ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb")
DIGEST_B = bytes.fromhex("3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d")


def content(size: int) -> bytes:
    return random.Random(size).randbytes(size)


_CONTENT: dict[int, bytes] = {}


def cached(size: int) -> bytes:
    if size not in _CONTENT:
        _CONTENT[size] = content(size)
    return _CONTENT[size]


def test_the_sizes_cover_one_two_and_three_levels() -> None:
    chunks = [-(-size // CHUNK_SIZE) for size in SIZES]
    assert chunks == [2, 4, 16, 176]
    assert chunks[-1] > MAX_LINKS == 174


@pytest.mark.parametrize("version", [0, 1], ids=["cidv0", "cidv1"])
@pytest.mark.parametrize("size", SIZES)
def test_cids_match_those_the_node_recorded(size: int, version: int, tmp_path: Path) -> None:
    data = cached(size)
    expected = RECORDED[(size, version)]
    assert cid_of(data, version) == expected  # type: ignore[arg-type]
    if size < 10 << 20:  # the file and verify paths are the same importer: spare the 44 MiB one
        assert verify_content(data, expected) == expected
        path = tmp_path / "blob"
        path.write_bytes(data)
        assert cid_of_file(path, version) == expected  # type: ignore[arg-type]
        assert verify_file(path, expected) == expected
    # Streamed in odd pieces, the importer gives the same root.
    importer = UnixFsImporter(version)
    for start in range(0, size, 1_000_003):
        importer.update(data[start : start + 1_000_003])
    root = importer.finish()
    assert str(root.cid) == expected
    assert root.file_size == size


@pytest.mark.parametrize("version", [0, 1], ids=["cidv0", "cidv1"])
def test_one_byte_more_or_less_changes_the_recorded_cid(version: int) -> None:
    size = SIZES[-2]
    data = cached(size)
    with pytest.raises(CidMismatchError):
        verify_content(data[:-1], RECORDED[(size, version)])
    with pytest.raises(CidMismatchError):
        verify_content(data + b"\x00", RECORDED[(size, version)])


def _raw(digest: bytes) -> CID:
    return CID("base32", 1, "raw", bytes([0x12, 0x20]) + digest)


def test_inner_node_bytes_written_out_by_hand() -> None:
    a = Child(_raw(DIGEST_A), file_size=1, tsize=1)
    b = Child(_raw(DIGEST_B), file_size=200, tsize=300)
    expected = (
        # PBNode.Links (field 2, length-delimited), one per child, in order:
        #   PBLink.Hash (field 1) = the child's binary CID (CIDv1, raw, sha2-256, 32 bytes),
        #   PBLink.Name (field 2) = "", PBLink.Tsize (field 3) = the child's tsize.
        bytes([0x12, 0x2A, 0x0A, 0x24, 0x01, 0x55, 0x12, 0x20])
        + DIGEST_A
        + bytes([0x12, 0x00, 0x18, 0x01])
        + bytes([0x12, 0x2B, 0x0A, 0x24, 0x01, 0x55, 0x12, 0x20])
        + DIGEST_B
        + bytes([0x12, 0x00, 0x18, 0xAC, 0x02])  # 300 = varint ac 02
        # PBNode.Data (field 1): UnixFS Type=File (field 1 = 2), filesize (field 3) = 201 = c9 01,
        # blocksizes (field 4, repeated) = 1 and 200 = c8 01.
        + bytes([0x0A, 0x0A, 0x08, 0x02, 0x18, 0xC9, 0x01, 0x20, 0x01, 0x20, 0xC8, 0x01])
    )
    assert len(expected) == 101
    assert encode_inner_node([a, b]) == expected
    for version, codec_prefix in ((1, bytes([0x01, 0x70])), (0, b"")):
        node = inner_node([a, b], version)
        assert bytes(node.cid) == codec_prefix + bytes([0x12, 0x20]) + hashlib.sha256(expected).digest()
        assert node.file_size == 201
        assert node.tsize == 101 + 1 + 300


def test_cidv0_leaf_bytes_written_out_by_hand() -> None:
    # PBNode.Data (field 1, 9 bytes) = UnixFS {Type: File (08 02), Data: "abc" (12 03 61 62 63),
    # filesize: 3 (18 03)}; no links.
    block = bytes([0x0A, 0x09, 0x08, 0x02, 0x12, 0x03, 0x61, 0x62, 0x63, 0x18, 0x03])
    for version, prefix in ((0, b""), (1, bytes([0x01, 0x70]))):
        node = leaf(b"abc", version, raw_leaves=False)
        assert bytes(node.cid) == prefix + bytes([0x12, 0x20]) + hashlib.sha256(block).digest()
        assert (node.file_size, node.tsize) == (3, 11)
    # An empty chunk has no Data field in its UnixFS message.
    empty = bytes([0x0A, 0x04, 0x08, 0x02, 0x18, 0x00])
    assert bytes(leaf(b"", 0, raw_leaves=False).cid) == bytes([0x12, 0x20]) + hashlib.sha256(empty).digest()
    raw = leaf(b"abc", 1, raw_leaves=True)
    assert bytes(raw.cid) == bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(b"abc").digest()
    assert (raw.file_size, raw.tsize) == (3, 3)


def test_a_lowered_link_limit_builds_the_balanced_tree_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    """With 3 links per node, 7 leaves make nodes [l1 l2 l3] [l4 l5 l6] [l7], then [n1 n2 n3]."""
    import exchange.unixfs as unixfs

    monkeypatch.setattr(unixfs, "MAX_LINKS", 3)
    monkeypatch.setattr(unixfs, "CHUNK_SIZE", 4)
    data = bytes(range(26))  # 6 full chunks of 4 bytes and one of 2
    leaves = [leaf(data[i : i + 4], 1, True) for i in range(0, 26, 4)]
    assert [x.file_size for x in leaves] == [4, 4, 4, 4, 4, 4, 2]
    n1, n2, n3 = inner_node(leaves[0:3], 1), inner_node(leaves[3:6], 1), inner_node(leaves[6:], 1)
    top = inner_node([n1, n2, n3], 1)
    importer = UnixFsImporter(1)
    importer.update(data)
    assert importer.finish() == top
    assert top.file_size == 26
    # One leaf more than 3 * 3: the root gains a third level, its second child a lone chain.
    data = bytes(range(37))
    leaves = [leaf(data[i : i + 4], 1, True) for i in range(0, 37, 4)]
    assert len(leaves) == 10
    level1 = [inner_node(leaves[i : i + 3], 1) for i in range(0, 9, 3)]
    expected = inner_node([inner_node(level1, 1), inner_node([inner_node(leaves[9:], 1)], 1)], 1)
    importer = UnixFsImporter(1)
    importer.update(data)
    assert importer.finish() == expected


# --- exchange.cid: parsing, normalising and verifying, against values written out ---------------

HELLO_V0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"  # `ipfs add` of b"hello world\n" (Kubo)


def _refusal(value: object) -> str:
    with pytest.raises(InvalidCidError) as caught:
        parse_cid(value)  # type: ignore[arg-type]
    return str(caught.value)


def test_cid_of_concatenates_an_iterable_of_chunks() -> None:
    assert cid_of(iter([b"hello ", b"world\n"]), 0) == HELLO_V0
    assert cid_of([b"hello world\n"], 0) == HELLO_V0


def test_refusals_name_their_reason() -> None:
    assert _refusal("") == "not a CID: ''"
    assert _refusal(12) == "not a CID: 12"
    assert _refusal("a" * 201) == "not a CID: " + repr("a" * 201)  # too long: never decoded
    assert _refusal("not a cid").startswith("not a CID: 'not a cid' (")  # decoded, and failed
    # 200 characters is not too long: a valid identity-hash CID of that length is decoded, then
    # refused for its hash function.
    identity = str(CID("base32", 1, "raw", multihash.digest(b"y" * 120, "identity")))
    assert len(identity) == 200
    assert _refusal(identity) == f"unsupported hash function identity in {identity}"
    sha512 = str(CID("base32", 1, "raw", multihash.digest(b"x", "sha2-512")))
    assert _refusal(sha512) == f"unsupported hash function sha2-512 in {sha512}"
    dag_json = "bagaaierasords4njcts6vs7qvdjfcvgnume4hqohf65zsfguprqphs3icwea"
    assert _refusal(dag_json) == f"unsupported codec json in {dag_json}"


def test_normalize_keeps_cidv0_in_base58() -> None:
    assert normalize_cid(HELLO_V0) == HELLO_V0
    assert normalize_cid(f" {HELLO_V0}\n") == HELLO_V0
    assert normalize_cid(CID.decode(HELLO_V0)) == HELLO_V0


def test_a_raw_cid_addresses_the_whole_content_as_one_block(tmp_path: Path) -> None:
    # A `raw` CID over more than one chunk is legal (one block of any size): its CID is sha2-256
    # of all the bytes, unlike the chunked dag-pb layout of the same bytes.
    data = cached(SIZES[0])
    raw = str(CID("base32", 1, "raw", bytes([0x12, 0x20]) + hashlib.sha256(data).digest()))
    assert raw.startswith("bafkrei")
    assert raw != RECORDED[(SIZES[0], 1)]
    assert verify_content(data, raw) == raw
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert verify_file(path, raw) == raw
    with pytest.raises(CidMismatchError) as caught:
        verify_content(data[:-1], raw)
    short = str(CID("base32", 1, "raw", bytes([0x12, 0x20]) + hashlib.sha256(data[:-1]).digest()))
    assert caught.value.actual == short
    assert caught.value.expected == raw


# --- exchange.unixfs: the importer's edges --------------------------------------------------------


def test_a_finished_importer_refuses_more() -> None:
    importer = UnixFsImporter(1)
    importer.update(b"abc")
    importer.finish()
    with pytest.raises(RuntimeError, match=r"^importer already finished$"):
        importer.update(b"d")
    with pytest.raises(RuntimeError, match=r"^importer already finished$"):
        importer.finish()


def test_negative_varints_are_refused_with_a_message() -> None:
    with pytest.raises(ValueError, match=r"^varint must be non-negative$"):
        encode_varint(-5)
    assert encode_varint(300) == bytes([0xAC, 0x02])
    assert encode_varint(2**35) == bytes([0x80, 0x80, 0x80, 0x80, 0x80, 0x01])


def test_import_bytes_defaults_to_cidv1_raw_leaves_and_honours_raw_leaves_false() -> None:
    assert str(import_bytes([b"hello world\n"]).cid) == str(
        CID("base32", 1, "raw", bytes([0x12, 0x20]) + hashlib.sha256(b"hello world\n").digest())
    )
    assert str(import_bytes([b"hello ", b"world\n"], 0).cid) == HELLO_V0
    # CIDv1 without raw leaves: the CIDv0 block, addressed as CIDv1 dag-pb.
    v1_pb = import_bytes([b"hello world\n"], 1, raw_leaves=False)
    assert v1_pb.cid.digest == CID.decode(HELLO_V0).digest
    assert (v1_pb.cid.version, v1_pb.cid.codec.name) == (1, "dag-pb")


def test_iter_file_reads_in_blocks() -> None:
    import io

    assert list(iter_file(io.BytesIO(b"x" * 10), block=4)) == [b"xxxx", b"xxxx", b"xx"]
    assert list(iter_file(io.BytesIO(b""))) == []


def test_importer_defaults_and_refusals() -> None:
    default = UnixFsImporter()
    assert (default.cid_version, default.raw_leaves) == (1, True)
    assert (UnixFsImporter(0).cid_version, UnixFsImporter(0).raw_leaves) == (0, False)
    with pytest.raises(ValueError, match=r"^CID version must be 0 or 1, not 2$"):
        UnixFsImporter(2)
    with pytest.raises(ValueError, match=r"^raw leaves need CIDv1$"):
        UnixFsImporter(0, raw_leaves=True)


# Binary form of HELLO_V0 (sha2-256 multihash: 12 20 + digest), decoded once from its base58 text.
HELLO_V0_BINARY = bytes.fromhex("122046d44814b9c5af141c3aaab7c05dc5e844ead5f91f12858b021eba45768b4c0e")


def test_binary_and_text_forms_of_cids() -> None:
    assert cid_binary(HELLO_V0) == HELLO_V0_BINARY
    assert cid_binary(CID.decode(HELLO_V0)) == HELLO_V0_BINARY
    assert cid_text(HELLO_V0_BINARY) == HELLO_V0
    assert cid_text(bytearray(HELLO_V0_BINARY)) == HELLO_V0  # type: ignore[arg-type]  # any bytes-like value
    raw_binary = bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(b"hello world\n").digest()
    raw_text = str(CID("base32", 1, "raw", bytes([0x12, 0x20]) + hashlib.sha256(b"hello world\n").digest()))
    assert cid_text(raw_binary) == raw_text
    assert cid_binary(raw_text) == raw_binary
    assert (
        normalize_cid(raw_text.upper().replace("B", "B", 1)) == raw_text
    )  # base32 upper case is the same CID


def test_bad_binary_cids_are_refused_with_their_reason() -> None:
    with pytest.raises(InvalidCidError) as caught:
        cid_text(b"\x01\x02")
    assert str(caught.value).startswith("not a binary CID: 0102...: ")
    sha512 = bytes(CID("base32", 1, "raw", multihash.digest(b"x", "sha2-512")))
    with pytest.raises(InvalidCidError) as caught:
        cid_text(sha512)
    assert str(caught.value).startswith("unsupported hash function sha2-512 in ")


def test_normalize_rewrites_a_cid_object_in_another_base() -> None:
    raw_text = str(CID("base32", 1, "raw", bytes([0x12, 0x20]) + hashlib.sha256(b"abc").digest()))
    in_base58 = CID.decode(raw_text).set(base="base58btc")
    assert str(in_base58).startswith("z")
    assert normalize_cid(in_base58) == raw_text
