"""`LocalStore` and `IpfsStore` behave as the `ContentStore` interface promises, and bad bytes
never get in or out."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from exchange.cid import cid_of
from exchange.errors import (
    CidMismatchError,
    NotFoundError,
    OversizedError,
    StoreError,
    StoreUnavailableError,
)
from exchange.ipfs import IpfsStore
from exchange.local import LocalStore
from exchange.node import IpfsNode, free_port
from exchange.store import ContentStore
from exchange.unixfs import CHUNK_SIZE

UNKNOWN = cid_of(b"nobody ever stored this")


def content(size: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).bytes(size)


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()
    }


# --- LocalStore ---------------------------------------------------------------------------------


def test_local_store_round_trip_pins_and_gc(local_store: LocalStore) -> None:
    assert isinstance(local_store, ContentStore)
    kept, dropped = content(1000, 1), content(3 * CHUNK_SIZE, 2)
    kept_cid = local_store.put(kept)
    dropped_cid = local_store.put(dropped, pin=False)
    assert local_store.get(kept_cid) == kept
    assert local_store.has(dropped_cid)
    assert local_store.pins() == {kept_cid}
    assert local_store.gc() == [dropped_cid]
    assert not local_store.has(dropped_cid)
    local_store.unpin(kept_cid)
    with pytest.raises(StoreError, match="not pinned"):
        local_store.unpin(kept_cid)
    assert local_store.gc() == [kept_cid]
    assert local_store.cids() == []


def test_local_store_writes_atomically_and_leaves_no_temporaries(local_store: LocalStore) -> None:
    data = content(2 * CHUNK_SIZE + 1)
    cid = local_store.put(data)
    assert local_store.put(data) == cid  # idempotent
    stored = local_store.root / "objects" / cid[-2:] / cid
    assert stored.read_bytes() == data
    assert not stat.S_IMODE(stored.stat().st_mode) & 0o222  # read-only once written
    assert list((local_store.root / "tmp").iterdir()) == []


def test_local_store_put_file_streams_and_matches_put(local_store: LocalStore, tmp_path: Path) -> None:
    data = content(5 * CHUNK_SIZE + 99, 3)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    assert local_store.put_file(source) == cid_of(data)
    assert local_store.get(cid_of(data)) == data


def test_local_store_refuses_bytes_that_do_not_match_the_expected_cid(local_store: LocalStore) -> None:
    data = content(CHUNK_SIZE + 5)
    cid = cid_of(data)
    before = snapshot(local_store.root)
    with pytest.raises(CidMismatchError):
        local_store.put(data[:-1], expected_cid=cid)
    assert snapshot(local_store.root) == before
    assert local_store.put(data, expected_cid=cid) == cid


def test_local_store_reports_a_damaged_object_and_keeps_it(local_store: LocalStore) -> None:
    data = content(10_000)
    cid = local_store.put(data)
    path = local_store.root / "objects" / cid[-2:] / cid
    path.chmod(0o644)
    path.write_bytes(data[:-1])  # truncated on disk behind the store's back
    before = snapshot(local_store.root)
    with pytest.raises(CidMismatchError):
        local_store.get(cid)
    assert snapshot(local_store.root) == before
    assert local_store.put(data) == cid  # putting the right bytes again repairs it
    assert local_store.get(cid) == data


def test_local_store_limits_and_missing_objects(local_store: LocalStore) -> None:
    cid = local_store.put(content(5000))
    with pytest.raises(OversizedError):
        local_store.get(cid, max_bytes=4999)
    with pytest.raises(NotFoundError):
        local_store.get(UNKNOWN)
    with pytest.raises(NotFoundError):
        local_store.pin(UNKNOWN)
    assert not local_store.has(UNKNOWN)


# --- IpfsStore against the real node ------------------------------------------------------------


@pytest.mark.ipfs
def test_ipfs_store_identity_and_interface(ipfs_store: IpfsStore) -> None:
    assert isinstance(ipfs_store, ContentStore)
    assert ipfs_store.version().version
    assert ipfs_store.id().peer_id


@pytest.mark.ipfs
def test_ipfs_store_pins(ipfs_store: IpfsStore, ipfs_store_v0: IpfsStore) -> None:
    data = content(1234, 11)
    cid = ipfs_store.put(data, pin=False)
    assert ipfs_store.has(cid)
    assert cid not in ipfs_store.pins()
    ipfs_store.pin(cid)
    assert cid in ipfs_store.pins()
    ipfs_store.unpin(cid)
    assert cid not in ipfs_store.pins()
    with pytest.raises(StoreError, match="not pinned"):
        ipfs_store.unpin(cid)
    # Pins of both CID versions are listed (js-ipfs cannot print CIDv0 in base32; the store copes).
    v0 = ipfs_store_v0.put(data)
    assert v0.startswith("Qm")
    assert v0 in ipfs_store.pins()
    ipfs_store_v0.unpin(v0)


@pytest.mark.ipfs
def test_ipfs_store_reports_unknown_cids_without_hanging(ipfs_node: IpfsNode) -> None:
    with IpfsStore(ipfs_node.api_url, timeout_s=1.0, has_timeout_s=0.3) as store:
        start = time.monotonic()
        assert not store.has(UNKNOWN)
        with pytest.raises(NotFoundError, match="not found"):
            store.get(UNKNOWN)
        with pytest.raises(NotFoundError):
            store.pin(UNKNOWN)
        assert time.monotonic() - start < 15


@pytest.mark.ipfs
def test_ipfs_store_enforces_max_bytes_while_streaming(ipfs_store: IpfsStore) -> None:
    cid = ipfs_store.put(content(3 * CHUNK_SIZE, 12), pin=False)
    with pytest.raises(OversizedError):
        ipfs_store.get(cid, max_bytes=CHUNK_SIZE)


@pytest.mark.ipfs
def test_ipfs_store_put_file_and_get_file(ipfs_store: IpfsStore, tmp_path: Path) -> None:
    data = content(4 * CHUNK_SIZE + 17, 13)
    source = tmp_path / "in.bin"
    source.write_bytes(data)
    cid = ipfs_store.put_file(source, pin=False)
    assert cid == cid_of(data)
    target = tmp_path / "out.bin"
    ipfs_store.get_file(cid, target)
    assert target.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.bin", "out.bin"]


@pytest.mark.ipfs
def test_ipfs_store_refuses_mismatching_bytes_before_adding(ipfs_store: IpfsStore) -> None:
    data = content(777, 14)
    with pytest.raises(CidMismatchError):
        ipfs_store.put(data + b"x", expected_cid=cid_of(data))
    assert not ipfs_store.has(cid_of(data + b"x"))


def _block_files(node: IpfsNode, block: bytes) -> list[Path]:
    return [path for path in (node.repo_dir / "blocks").rglob("*.data") if path.read_bytes() == block]


@pytest.mark.ipfs
@pytest.mark.parametrize("size", [500, 2 * CHUNK_SIZE + 9], ids=["raw-block", "dag"])
def test_ipfs_store_detects_a_node_that_serves_tampered_bytes(
    size: int, ipfs_node: IpfsNode, ipfs_store: IpfsStore, tmp_path: Path
) -> None:
    """Flip a bit in a block file of the node's own repo: the node serves it, the client refuses it."""
    data = content(size, 15)
    cid = ipfs_store.put(data, pin=False)
    leaf = data[CHUNK_SIZE : 2 * CHUNK_SIZE] if size > CHUNK_SIZE else data
    (block_file,) = _block_files(ipfs_node, leaf)
    damaged = bytearray(leaf)
    damaged[7] ^= 0x01
    block_file.write_bytes(bytes(damaged))
    with pytest.raises(CidMismatchError):
        ipfs_store.get(cid)
    target = tmp_path / "never.bin"
    with pytest.raises(CidMismatchError):
        ipfs_store.get_file(cid, target)
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left behind
    block_file.write_bytes(leaf)
    assert ipfs_store.get(cid) == data


def test_ipfs_store_node_down_is_a_typed_error() -> None:
    with IpfsStore(f"http://127.0.0.1:{free_port()}", retries=2, backoff_s=0.01) as store:
        with pytest.raises(StoreUnavailableError, match="does not answer"):
            store.version()
        with pytest.raises(StoreUnavailableError):
            store.put(b"data")
        with pytest.raises(StoreUnavailableError):
            store.get(UNKNOWN)


def test_missing_ipfs_installation_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from exchange.node import IpfsNotInstalledError, find_ipfs

    monkeypatch.setenv("KNEXA_IPFS_TOOLS_DIR", str(tmp_path))
    monkeypatch.delenv("KNEXA_IPFS_BINARY", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # neither `ipfs` nor `node` can be found
    with pytest.raises(IpfsNotInstalledError, match="make ipfs"):
        find_ipfs()


def test_ipfs_store_retries_busy_answers_with_backoff_but_not_errors() -> None:
    """Retry policy as a unit (an in-process transport): 503 is retried, a 500 error is not."""
    calls: list[str] = []
    answers = iter([503, 503, 200, 500])

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        status = next(answers)
        if status == 200:
            return httpx.Response(200, json={"Version": "0.0-test", "Golang": "go1"})
        return httpx.Response(status, json={"Message": "busy" if status == 503 else "boom", "Code": 0})

    store = IpfsStore("http://127.0.0.1:9", transport=httpx.MockTransport(handler), backoff_s=0.001)
    assert store.version().agent == "kubo"
    assert calls == ["/api/v0/version"] * 3
    with pytest.raises(StoreError, match="boom"):
        store.version()
    assert len(calls) == 4
