"""The explorer at the size of a real market: incremental index, cached verdicts, paging, reset
detection, strict parameters and credentials kept out of every URL it shows (real Anvil)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from coincurve import PrivateKey
from fastapi.testclient import TestClient

from chain.anvil import AnvilNode, free_port
from chain.devchain import DevChain
from chain.units import ether
from explorer.content import ContentReader, open_readonly_store
from explorer.data import ExplorerData, ExplorerSettings
from explorer.index import MarketIndex
from explorer.models import Snapshot
from explorer.redact import REDACTED, redact_text, redact_url
from explorer.server import build_app
from tests.explorer.scenario import Scenario

Round = tuple[DevChain, Scenario]
SECRETS = ("hunter2", "0123456789abcdef0123456789abcdef", "topsecret", "alice")


def _key(index: int) -> bytes:
    return bytes(PrivateKey(bytes([index + 1]) * 32).public_key.format(compressed=True))


def _data(manifest: Path, store: str | None = None, rpc_url: str | None = None) -> ExplorerData:
    settings = ExplorerSettings(manifest=manifest, rpc_url=rpc_url, ttl_s=0)
    return ExplorerData(settings, ContentReader(open_readonly_store(store)))


def _snapshot(data: ExplorerData) -> Snapshot:
    snap = data.snapshot()
    assert isinstance(snap, Snapshot), snap
    return snap


def _index(data: ExplorerData) -> MarketIndex:
    assert data.index is not None
    return data.index


# ---------------------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://alice:hunter2@rpc.example.org:8545/", "https://***@rpc.example.org:8545/"),
        ("https://mainnet.infura.io/v3/0123456789abcdef0123456789abcdef", "https://mainnet.infura.io/v3/***"),
        ("https://eth-mainnet.g.alchemy.com/v2/topsecretKEY", "https://eth-mainnet.g.alchemy.com/v2/***"),
        ("https://rpc.example.org/?apikey=topsecret&chain=1", "https://rpc.example.org/?apikey=***&chain=1"),
        ("https://rpc.example.org/?x-api-key=topsecret", "https://rpc.example.org/?x-api-key=***"),
        ("https://rpc.example.org/0123456789abcdef0123456789abcdef/", "https://rpc.example.org/***/"),
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("http://127.0.0.1:5001/api/v0", "http://127.0.0.1:5001/api/v0"),
        ("not a url hunter2", REDACTED),
        ("", ""),
    ],
)
def test_redact_url_removes_every_credential_form(url: str, kept: str) -> None:
    assert redact_url(url) == kept


def test_redact_text_redacts_the_urls_inside_an_error_message() -> None:
    text = "cannot reach https://alice:hunter2@rpc.example.org/v3/0123456789abcdef0123456789abcdef: refused"
    redacted = redact_text(text)
    assert all(secret not in redacted for secret in SECRETS)
    assert redacted.startswith("cannot reach https://***@rpc.example.org/v3/***")
    assert redacted.endswith(": refused")
    urllib3 = "Max retries exceeded with url: /v3/0123456789abcdef0123456789abcdef?key=hunter2 (Caused by"
    assert redact_text(urllib3) == "Max retries exceeded with url: /v3/***?key=*** (Caused by"


def test_no_credential_of_the_rpc_url_reaches_a_page_or_the_api(
    anvil_node: AnvilNode, empty_manifest: Path
) -> None:
    """A URL with user info and query tokens works with Anvil; one with a path key gets HTTP 404 from it
    (so 503 here), and one to a closed port is unreachable (503): no secret shows in any case."""
    secret_url = f"http://alice:hunter2@127.0.0.1:{anvil_node.port}/?token=topsecret&chain=1"
    path_key_url = f"http://127.0.0.1:{anvil_node.port}/v3/0123456789abcdef0123456789abcdef"
    down_url = f"http://alice:hunter2@127.0.0.1:{free_port()}/v3/0123456789abcdef0123456789abcdef"
    for rpc_url, status in ((secret_url, 200), (path_key_url, 503), (down_url, 503)):
        client = TestClient(build_app(manifest=empty_manifest, rpc_url=rpc_url, ttl_s=0))
        for path in ("/api/summary", "/", "/organizations", "/api/events"):
            response = client.get(path)
            assert response.status_code == status, (path, response.text)
            assert all(secret not in response.text for secret in SECRETS), (path, response.text)
    summary = TestClient(build_app(manifest=empty_manifest, rpc_url=secret_url, ttl_s=0)).get("/api/summary")
    assert summary.json()["chain"]["rpc_url"] == f"http://***@127.0.0.1:{anvil_node.port}/?token=***&chain=1"


# ---------------------------------------------------------------------------- incremental index


def test_a_refresh_reads_only_new_blocks_and_rereads_only_touched_organizations(
    dev_chain: DevChain, empty_manifest: Path
) -> None:
    orgs = [dev_chain.organization(index) for index in range(3)]
    for number, org in enumerate(orgs):
        org.register(f"org-{number}", b"not a cid", _key(number), ether(2))
    data = _data(empty_manifest)
    first = _snapshot(data)
    index = _index(data)
    assert index.stats["events_read"] == first.summary.counts.events > 0
    assert index.stats["organization_reads"] == 3
    _snapshot(data)
    _snapshot(data)
    assert index.stats["events_read"] == first.summary.counts.events  # nothing new: nothing read
    assert index.stats["organization_reads"] == 3
    orgs[1].add_stake(ether(1))
    after = _snapshot(data)
    assert data.index is index
    assert index.stats["events_read"] == first.summary.counts.events + 1  # the StakeAdded event
    assert index.stats["organization_reads"] == 4  # only the organization it names
    by_name = {org.name: org for org in after.organizations}
    assert by_name["org-1"].stake_wei == dev_chain.client().organization(by_name["org-1"].address).stake
    assert by_name["org-1"].stake_wei == ether(3)


def test_finalized_rounds_are_read_and_replayed_once(round_chain: Round) -> None:
    chain, scenario = round_chain
    data = _data(scenario.manifest, store=str(scenario.store_dir))
    first = _snapshot(data)
    index = _index(data)
    assert [item.verdict.verdict for item in first.rounds] == ["match"] * scenario.rounds
    assert index.stats == {**index.stats, "round_reads": scenario.rounds, "replays": 1}
    chain.mine(3)  # new blocks without events
    again = _snapshot(data)
    assert index.stats["round_reads"] == scenario.rounds
    assert index.stats["replays"] == 1
    assert again.rounds == first.rounds
    assert again.summary.chain.block_number == first.summary.chain.block_number + 3


def test_a_chain_reset_under_the_explorer_is_detected_and_indexed_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Same port, same deterministic market address, other history: nothing of the old one stays."""
    port = free_port()
    manifest = tmp_path / "deployment.json"
    with DevChain(node=AnvilNode(port=port).start()) as chain:
        for index in range(2):
            chain.organization(index).register(f"old-{index}", b"x", _key(index), ether(2))
        chain.deployment.save(manifest)
        data = _data(manifest)
        before = _snapshot(data)
        address = chain.deployment.market_address
        chain.node.stop()
    assert [org.name for org in before.organizations] == ["old-0", "old-1"]
    with DevChain(node=AnvilNode(port=port).start()) as chain:
        chain.organization(5).register("new-5", b"y", _key(5), ether(2))
        chain.mine(4)  # past the old read-through block, with other contents
        assert chain.deployment.market_address == address
        chain.deployment.save(manifest)
        with caplog.at_level(logging.WARNING, logger="explorer.data"):
            after = _snapshot(data)
            _snapshot(data)
        chain.node.stop()
    assert [org.name for org in after.organizations] == ["new-5"]
    assert after.summary.counts.events == len([e for e in after.events if e.block_number >= 0])
    assert all(event.args.get("name") != "old-0" for event in after.events)
    resets = [record for record in caplog.records if "reset" in record.getMessage()]
    assert len(resets) == 1  # said once


# ---------------------------------------------------------------------------- paging and parameters


@pytest.fixture(scope="module")
def client(round_chain: Round) -> TestClient:
    _, scenario = round_chain
    return TestClient(build_app(manifest=scenario.manifest, store=str(scenario.store_dir), ttl_s=0))


@pytest.mark.parametrize("path", ["/api/events", "/api/rounds", "/api/organizations", "/api/verdicts"])
def test_every_list_is_paged_and_the_pages_add_up_to_the_list(client: TestClient, path: str) -> None:
    whole = client.get(path, params={"limit": 500}).json()
    assert whole["next_cursor"] is None
    assert whole["total"] == len(whole["items"]) > 0
    collected: list[object] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        page = client.get(path, params=params).json()
        assert len(page["items"]) <= 2
        assert page["total"] == whole["total"]
        collected += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert collected == whole["items"]
    assert pages == (whole["total"] + 1) // 2
    beyond = client.get(path, params={"cursor": "999999"}).json()
    assert beyond["items"] == []
    assert beyond["next_cursor"] is None


def test_the_default_page_is_bounded(client: TestClient) -> None:
    page = client.get("/api/events").json()
    assert len(page["items"]) == min(100, page["total"])


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/events", {"block": "0.0"}),
        ("/api/events", {"block": "1e3"}),
        ("/api/events", {"block": "+1"}),
        ("/api/events", {"block": " 1"}),
        ("/api/events", {"block": "-1"}),
        ("/api/events", {"limit": "0"}),
        ("/api/events", {"limit": "501"}),
        ("/api/events", {"limit": "2.0"}),
        ("/api/events", {"cursor": "abc"}),
        ("/api/events", {"cursor": "-1"}),
        ("/api/rounds/1.0", {}),
        ("/api/rounds/-1", {}),
        ("/api/rounds/1e0", {}),
        ("/rounds/1.0", {}),
    ],
)
def test_lax_integers_are_refused(client: TestClient, path: str, params: dict[str, str]) -> None:
    assert client.get(path, params=params).status_code == 422


def test_every_status_code_is_documented(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for route in ("/api/organizations/{address}", "/api/rounds/{round_id}"):
        assert {"200", "404", "422", "503"} <= set(paths[route]["get"]["responses"]), route
    for route in ("/api/summary", "/api/rounds", "/api/events", "/api/history"):
        assert "503" in paths[route]["get"]["responses"], route
    sourcify = [route for route in paths if route.startswith("/sourcify/")]
    assert sourcify
    assert all("404" in paths[route]["get"]["responses"] for route in sourcify)


def test_the_store_and_block_explorer_urls_are_shown_without_credentials(round_chain: Round) -> None:
    _, scenario = round_chain
    app = build_app(
        manifest=scenario.manifest,
        store=f"http://alice:hunter2@127.0.0.1:{free_port()}/?token=topsecret",
        block_explorer_url="https://alice:hunter2@explorer.example.org/",
        store_timeout_s=0.5,
        ttl_s=0,
    )
    client = TestClient(app)
    for path in ("/api/summary", "/api/organizations", "/api/rounds", "/", "/rounds/1", "/organizations"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert all(secret not in response.text for secret in SECRETS), (path, response.text)
    summary = client.get("/api/summary").json()
    assert summary["block_explorer_url"] == "https://***@explorer.example.org/"
    assert summary["store"]["reachable"] is False
