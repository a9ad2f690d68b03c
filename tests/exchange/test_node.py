"""Starting and stopping a real IPFS node leaves nothing running behind."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from exchange.ipfs import IpfsStore
from exchange.node import IpfsNode, find_ipfs

pytestmark = pytest.mark.ipfs


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_node_starts_offline_on_loopback_and_stops_its_whole_process_group(tmp_path: Path) -> None:
    try:
        implementation = find_ipfs()
    except Exception as error:  # same message as the fixture gives
        pytest.fail(str(error), pytrace=False)
    node = IpfsNode(tmp_path / "node", implementation)
    with node:
        assert node.api_url.startswith("http://127.0.0.1:")
        pid = node.pid
        assert pid is not None
        assert _group_alive(pid)
        with IpfsStore(node.api_url) as store:
            assert store.get(store.put(b"lifecycle")) == b"lifecycle"
            identity = store.id()
        # Offline and loopback only: the node announces no public address.
        assert all("127.0.0.1" in address for address in identity.addresses)
    assert not node.running
    assert not _group_alive(pid)
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{node.api_url}/api/v0/version", timeout=1.0)
    # SIGTERM to a stopped node's group is harmless: nothing else shares the id.
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
