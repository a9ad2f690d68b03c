"""The Python CID computation, `LocalStore` and a real IPFS node agree on the same bytes.

Sizes cover the edges of the UnixFS layout: empty, one byte, around one 256 KiB chunk, around a full
inner node of 174 chunks (where the DAG gains its second level), and 20 MiB.
"""

from __future__ import annotations

import numpy as np
import pytest

from exchange.cid import cid_of
from exchange.ipfs import IpfsStore
from exchange.local import LocalStore
from exchange.unixfs import CHUNK_SIZE, MAX_LINKS

pytestmark = pytest.mark.ipfs

SIZES = [
    0,
    1,
    CHUNK_SIZE - 1,
    CHUNK_SIZE,
    CHUNK_SIZE + 1,
    2 * CHUNK_SIZE,
    5 * CHUNK_SIZE + 777,
    20 << 20,
    MAX_LINKS * CHUNK_SIZE,
    MAX_LINKS * CHUNK_SIZE + 1,
]


def content(size: int) -> bytes:
    return np.random.default_rng(size).bytes(size)


@pytest.mark.parametrize("version", [0, 1], ids=["cidv0", "cidv1"])
@pytest.mark.parametrize("size", SIZES)
def test_python_local_store_and_node_agree(
    size: int, version: int, ipfs_store: IpfsStore, ipfs_store_v0: IpfsStore, local_store: LocalStore
) -> None:
    data = content(size)
    node = ipfs_store_v0 if version == 0 else ipfs_store
    local_store.cid_version = node.cid_version
    expected = cid_of(data, node.cid_version)

    assert local_store.put(data, pin=False) == expected
    # IpfsStore.put checks the node's own answer against the Python CID, then we ask the node again.
    assert node.put(data, pin=False) == expected
    assert expected.startswith("Qm" if version == 0 else "baf")

    # Whatever one store holds, the other returns under the same CID, verified.
    assert node.get(expected) == data
    assert local_store.get(expected) == data


def test_node_answers_cids_in_kubo_form(ipfs_store: IpfsStore) -> None:
    """js-ipfs would answer base58btc CIDv1 unless asked for base32; the store always asks."""
    data = content(CHUNK_SIZE + 3)
    cid = ipfs_store.put(data, pin=False)
    assert cid.startswith("bafybei")
    assert cid == cid_of(data, 1)
