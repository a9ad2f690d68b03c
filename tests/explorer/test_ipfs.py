"""The explorer over a real IPFS node (Kubo, or the project-local js-ipfs): same documents, same verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chain.devchain import DevChain
from exchange.ipfs import IpfsStore
from exchange.local import LocalStore
from exchange.node import IpfsNode
from explorer.server import build_app
from tests.explorer.scenario import Scenario

pytestmark = pytest.mark.ipfs


@pytest.fixture
def ipfs_api(ipfs_node: IpfsNode) -> str:
    """The API of the session's IPFS node (tests/conftest.py)."""
    return ipfs_node.api_url


def test_documents_and_verdicts_come_from_an_ipfs_node(
    ipfs_api: str, round_chain: tuple[DevChain, Scenario], tmp_path: Path
) -> None:
    _, scenario = round_chain
    local = LocalStore(scenario.store_dir)
    with IpfsStore(ipfs_api, timeout_s=10.0) as node:
        for cid in local.cids():  # publish what the organizations and the matchmaker stored
            node.put(local.get(cid), expected_cid=cid)
    client = TestClient(build_app(manifest=scenario.manifest, store=ipfs_api, ttl_s=0))
    summary = client.get("/api/summary").json()
    assert summary["store"]["reachable"] is True
    assert summary["notices"] == []
    organizations = client.get("/api/organizations").json()["items"]
    assert [org["profile"]["state"] for org in organizations] == ["decoded"] * 3
    rounds = client.get("/api/rounds").json()["items"]
    assert [item["decision"]["state"] for item in rounds] == ["decoded"] * scenario.rounds
    assert [item["verdict"]["verdict"] for item in rounds] == ["match"] * scenario.rounds
