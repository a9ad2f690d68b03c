"""The explorer's JSON API and pages over a real Anvil, with the real replay (`matchmaker.audit`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chain.anvil import free_port
from chain.deploy import Deployment
from chain.devchain import DevChain
from explorer.server import build_app
from tests.explorer.scenario import NAMES, Scenario

Round = tuple[DevChain, Scenario]


def client_for(manifest: Path, **options: object) -> TestClient:
    return TestClient(build_app(manifest=manifest, ttl_s=0, **options))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def client(round_chain: Round) -> TestClient:
    _, scenario = round_chain
    return client_for(
        scenario.manifest, store=str(scenario.store_dir), block_explorer_url="http://127.0.0.1:5100"
    )


def test_summary_counts_chain_and_parameters(client: TestClient, round_chain: Round) -> None:
    chain, scenario = round_chain
    summary = client.get("/api/summary").json()
    assert summary["chain"]["chain_id"] == 31337
    assert summary["chain"]["market_address"] == chain.deployment.market_address
    counts = summary["counts"]
    assert counts["organizations"] == 3
    assert counts["active_organizations"] == 3
    assert counts["rounds"] == scenario.rounds == counts["finalized_rounds"]
    assert counts["pairs"] == sum(len(pairs) for pairs in scenario.pairs.values())
    assert summary["parameters"]["min_stake"] == chain.parameters.min_stake
    assert summary["store"]["reachable"] is True
    assert summary["notices"] == []
    assert summary["open_round_id"] == 0


def test_organizations_show_state_and_decoded_profiles(client: TestClient, round_chain: Round) -> None:
    chain, scenario = round_chain
    organizations = client.get("/api/organizations").json()["items"]
    assert [org["name"] for org in organizations] == list(NAMES)
    for org, cid in zip(organizations, scenario.profile_cids, strict=True):
        on_chain = chain.client().organization(org["address"])
        assert org["stake_wei"] == on_chain.stake
        assert org["reputation_wad"] == on_chain.reputation
        assert org["credits_wad"] == on_chain.credits
        assert org["status"] == "active"
        assert org["profile_cid"] == cid
        assert org["profile"]["state"] == "decoded"
        assert org["profile"]["kind"] == "knexa.profile"
        assert org["profile"]["content"]["size_bucket"] == "1"
        assert org["registration"]["block_number"] > chain.deployment.deploy_block
    one = client.get(f"/api/organizations/{scenario.addresses[1].lower()}").json()
    assert one["name"] == NAMES[1]
    assert client.get("/api/organizations/0x000000000000000000000000000000000000dEaD").status_code == 404


def test_round_shows_pairs_scores_bundles_gains_rewards_slashes_and_reputation(
    client: TestClient, round_chain: Round
) -> None:
    chain, scenario = round_chain
    round_view = client.get("/api/rounds/1").json()
    assert round_view["status"] == "finalized"
    assert round_view["finalized"] is not None
    assert [(p["teacher"], p["student"]) for p in round_view["pairs"]] == scenario.pairs[1]
    decision = round_view["decision"]
    assert decision["state"] == "decoded"
    assert decision["kind"] == "knexa.decision"
    candidates = {(c["teacher"], c["student"]): c for c in decision["content"]["candidates"]}
    pairs = round_view["pairs"]
    for pair in pairs:
        scored = candidates[(pair["teacher"], pair["student"])]
        assert pair["score"] == {"mean": scored["mean"], "bonus": scored["bonus"], "score": scored["score"]}
        assert pair["bundle_cid"]
        assert pair["bundle"]["transaction_hash"].startswith("0x")
        assert pair["assigned"]["block_number"] == round_view["opened"]["block_number"]
        assert pair["reward"] is not None  # every teacher delivered
    assert pairs[0]["gain"] == 0.125
    assert pairs[0]["adapter_cid"]
    assert pairs[0]["report"]
    assert pairs[-1]["gain"] is None
    assert pairs[-1]["report"] is None
    slashes = round_view["slashes"]
    assert len(slashes) == 1
    assert slashes[0]["offender"] == pairs[-1]["student"]
    assert slashes[0]["beneficiary"] == pairs[-1]["teacher"]
    assert slashes[0]["reason"] == "no report"
    assert pairs[-1]["slashes"] == slashes
    moved = {move["organization"] for move in round_view["reputation_moves"]}
    assert moved == set(scenario.addresses)
    assert round_view["record_check"] == {"ok": True, "problems": []}
    on_chain = chain.client().round(1)
    assert round_view["deadline_block"] == on_chain.deadline_block
    assert client.get("/api/rounds/99").status_code == 404


def test_replay_verdicts_are_recomputed_by_the_explorer(client: TestClient, round_chain: Round) -> None:
    _, scenario = round_chain
    verdicts = client.get("/api/verdicts").json()["items"]
    assert [v["round_id"] for v in verdicts] == list(range(1, scenario.rounds + 1))
    assert all(v["verdict"] == "match" for v in verdicts), verdicts
    page = client.get("/rounds/1").text
    assert 'class="badge match"' in page


def test_a_tampered_decision_record_shows_mismatch(tampered_chain: Round) -> None:
    _, scenario = tampered_chain
    client = client_for(scenario.manifest, store=str(scenario.store_dir))
    verdict = client.get("/api/rounds/1").json()["verdict"]
    assert verdict["verdict"] == "mismatch", verdict
    assert verdict["first_difference"]
    assert "candidates" in verdict["first_difference"]
    page = client.get("/rounds/1").text
    assert 'class="badge mismatch"' in page
    assert "First difference" in page


def test_events_and_their_filters(client: TestClient, round_chain: Round) -> None:
    chain, _ = round_chain
    events = client.get("/api/events").json()["items"]
    names = [event["name"] for event in events]
    assert names.count("OrganizationRegistered") == 3
    assert "RoundFinalized" in names
    blocks = [(event["block_number"], event["log_index"]) for event in events]
    assert blocks == sorted(blocks)
    opened = client.get("/api/events", params={"name": "RoundOpened"}).json()["items"]
    assert [event["args"]["roundId"] for event in opened] == [1, 2]
    by_tx = client.get("/api/events", params={"tx": opened[0]["transaction_hash"]}).json()["items"]
    assert {event["name"] for event in by_tx} == {"RoundOpened"}
    assert client.get("/api/events", params={"block": opened[0]["block_number"]}).json()["items"] == by_tx
    page = client.get("/events", params={"name": "", "tx": "", "block": ""})
    assert page.status_code == 200
    assert "OrganizationRegistered" in page.text
    assert chain.deployment.market_address  # the events are the market's


def test_history_has_reputation_gains_and_pair_counts(client: TestClient, round_chain: Round) -> None:
    _, scenario = round_chain
    history = client.get("/api/history").json()
    assert history["rounds"] == [1, 2]
    series = {item["name"]: item for item in history["organizations"]}
    for org in client.get("/api/organizations").json()["items"]:
        points = series[org["name"]]["reputation"]
        assert [point["round_id"] for point in points] == [0, 1, 2]  # start, then after each round
        assert points[-1]["value"] == org["reputation"]
    counts = {(c["teacher"], c["student"]): c["rounds"] for c in history["pair_counts"]}
    expected: dict[tuple[str, str], int] = {}
    for pairs in scenario.pairs.values():
        for pair in pairs:
            expected[pair] = expected.get(pair, 0) + 1
    assert counts == expected


def test_pages_render_with_links_and_pictures(client: TestClient, round_chain: Round) -> None:
    _, scenario = round_chain
    for path in (
        "/",
        "/organizations",
        f"/organizations/{scenario.addresses[0]}",
        "/rounds",
        "/rounds/2",
        "/events",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "<svg" in response.text or path == "/events", path
    round_page = client.get("/rounds/1").text
    for teacher, student in scenario.pairs[1]:
        assert f'data-teacher="{teacher}" data-student="{student}"' in round_page
    assert "http://127.0.0.1:5100/tx/0x" in round_page  # the block explorer link of each transaction
    assert "http://127.0.0.1:5100/address/" in round_page
    assert all(name in client.get("/organizations").text for name in NAMES)
    assert client.get("/rounds/42").status_code == 404


def test_openapi_document_lists_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for route in (
        "/api/summary",
        "/api/organizations",
        "/api/rounds/{round_id}",
        "/api/events",
        "/api/verdicts",
    ):
        assert route in paths


def test_empty_chain(empty_manifest: Path) -> None:
    client = client_for(empty_manifest)
    summary = client.get("/api/summary").json()
    assert summary["counts"]["organizations"] == 0
    assert summary["counts"]["rounds"] == 0
    assert client.get("/api/rounds").json()["items"] == []
    assert client.get("/api/organizations").json()["items"] == []
    for path in ("/", "/organizations", "/rounds", "/events"):
        response = client.get(path)
        assert response.status_code == 200, path
    assert "No round has been opened" in client.get("/rounds").text
    assert "No organization has registered" in client.get("/organizations").text
    assert "No content store is configured" in client.get("/").text


def test_reset_chain_gives_a_clear_page_not_a_500(empty_manifest: Path, tmp_path: Path) -> None:
    data = json.loads(empty_manifest.read_text())
    data["market_address"] = "0x000000000000000000000000000000000000bEEF"  # nothing deployed there
    manifest = tmp_path / "reset.json"
    Deployment.from_json(data).save(manifest)
    client = client_for(manifest)
    page = client.get("/rounds")
    assert page.status_code == 503
    assert "was it reset?" in page.text
    assert "redeploy" in page.text
    api = client.get("/api/rounds")
    assert api.status_code == 503
    assert api.json()["error"] == "reset-chain"
    assert client.get("/healthz").json() == {"explorer": "up", "chain": "reset-chain"}


def test_unreachable_rpc_and_missing_manifest(empty_manifest: Path, tmp_path: Path) -> None:
    client = client_for(empty_manifest, rpc_url=f"http://127.0.0.1:{free_port()}")
    page = client.get("/")
    assert page.status_code == 503
    assert "unreachable" in page.text
    assert client.get("/api/summary").json()["error"] == "rpc-unreachable"
    missing = client_for(tmp_path / "nowhere.json")
    assert missing.get("/").status_code == 503
    assert "knexa chain up" in missing.get("/").text
    assert missing.get("/api/summary").json()["error"] == "no-manifest"


def test_unreachable_store_degrades_but_shows_the_chain(round_chain: Round) -> None:
    _, scenario = round_chain
    client = client_for(scenario.manifest, store=f"http://127.0.0.1:{free_port()}", store_timeout_s=0.5)
    summary = client.get("/api/summary").json()
    assert summary["store"]["reachable"] is False
    assert any("Degraded" in notice for notice in summary["notices"])
    org = client.get("/api/organizations").json()["items"][0]
    assert org["profile"]["state"] == "unavailable"
    assert org["profile_cid"] == scenario.profile_cids[0]
    page = client.get("/organizations")
    assert page.status_code == 200
    assert "Degraded" in page.text
    verdict = client.get("/api/rounds/1").json()["verdict"]
    assert verdict["verdict"] in ("unverifiable", "unavailable")


def test_missing_local_store_directory_is_not_created(round_chain: Round, tmp_path: Path) -> None:
    _, scenario = round_chain
    store = tmp_path / "no-store-here"
    client = client_for(scenario.manifest, store=str(store))
    assert client.get("/api/summary").json()["store"]["reachable"] is False
    assert not store.exists()


def test_without_a_store_the_replay_is_unavailable(round_chain: Round) -> None:
    _, scenario = round_chain
    verdict = client_for(scenario.manifest).get("/api/rounds/1").json()["verdict"]
    assert verdict["verdict"] == "unavailable"
    assert "--store" in verdict["detail"]


def test_an_unreachable_store_is_reported_on_an_empty_chain_too(empty_manifest: Path, tmp_path: Path) -> None:
    for store in (str(tmp_path / "absent"), f"http://127.0.0.1:{free_port()}"):
        summary = client_for(empty_manifest, store=store, store_timeout_s=0.5).get("/api/summary").json()
        assert summary["store"]["reachable"] is False, store
        assert any("Degraded" in notice for notice in summary["notices"]), store


def test_names_chosen_by_organizations_are_escaped(dev_chain: DevChain, empty_manifest: Path) -> None:
    evil = '<script>alert("pwned")</script>'
    key = bytes.fromhex("02" + "11" * 32)
    dev_chain.organization(0).register(evil, b"not a cid", key, dev_chain.parameters.min_stake)
    client = client_for(empty_manifest)
    page = client.get("/organizations")
    assert page.status_code == 200
    assert evil not in page.text
    assert "&lt;script&gt;" in page.text
    org = client.get("/api/organizations").json()["items"][0]
    assert org["name"] == evil
    assert org["profile"]["state"] == "invalid"  # registered with bytes that are not a CID


def test_a_round_page_shows_its_disputes_and_whether_replay_agrees(disputed_chain: Round) -> None:
    chain, scenario = disputed_chain
    client = client_for(scenario.manifest, store=str(scenario.store_dir))
    round_view = client.get("/api/rounds/1").json()
    assert round_view["verdict"]["verdict"] == "match", round_view["verdict"]
    (dispute,) = round_view["disputes"]
    last = chain.client().pairs(1)[-1]
    assert (dispute["pair_index"], dispute["teacher"], dispute["student"]) == (
        last.index,
        last.teacher,
        last.student,
    )
    assert dispute["outcome"] == "defective"
    assert dispute["replay"] == "match"
    assert dispute["evidence_cid"]
    assert dispute["verdict_cid"]
    assert dispute["ruled"]["block_number"] > dispute["disputed"]["block_number"]
    assert client.get("/api/rounds/1/disputes").json()["items"] == [dispute]
    first_page = client.get("/api/disputes", params={"limit": 1}).json()
    assert first_page["items"] == [dispute]
    assert client.get("/api/rounds/99/disputes").status_code == 404
    page = client.get("/rounds/1").text
    assert 'id="disputes"' in page
    assert dispute["evidence_cid"] in page
    assert 'class="badge defective"' in page
    assert client.get("/api/verdicts").json()["items"][0]["disputes"][0]["recomputed_defective"] is True
