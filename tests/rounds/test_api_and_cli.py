"""The matchmaker's HTTP API and the `knexa audit replay` / `knexa matchmaker run` commands."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from exchange.cid import cid_text
from knexa.cli import app
from matchmaker.api import create_app
from tests.rounds.conftest import Federation

runner = CliRunner()


def test_api_shows_policy_rounds_and_verdicts(federation: Federation) -> None:
    matchmaker = federation.matchmaker()
    client = TestClient(create_app(matchmaker))
    assert client.get("/rounds/current").status_code == 404
    health = client.get("/health").json()
    assert (health["status"], health["market"]) == ("ok", federation.chain.deployment.market_address)

    matchmaker.step()
    federation.play_open_round()
    current = client.get("/rounds/current").json()
    assert (current["round"], current["status"], current["verdict"]) == (1, "open", "match")
    assert len(current["pairs"]) == 4
    assert all(pair["bundle_cid"] for pair in current["pairs"])
    matchmaker.step()
    finalized = client.get("/rounds/1").json()
    assert finalized["status"] == "finalized"
    assert {pair["gain"] for pair in finalized["pairs"]} <= {0.05, 0.1, 0.15}

    policy = client.get("/policy").json()
    assert (policy["name"], policy["seed"], policy["observed_rounds"]) == ("linucb", 7, 1)
    assert client.get("/rounds/9").status_code == 404
    assert "/rounds/{round_id}" in client.get("/openapi.json").json()["paths"]


def _manifest(federation: Federation, tmp_path: Path) -> Path:
    path = tmp_path / "deployment.json"
    federation.chain.deployment.save(path)
    return path


def test_matchmaker_run_and_audit_replay_commands(federation: Federation, tmp_path: Path) -> None:
    manifest = _manifest(federation, tmp_path)
    common = ["--manifest", str(manifest), "--store", str(federation.store.root)]
    opened = runner.invoke(
        app, ["matchmaker", "run", *common, "--dev-account", "1", "--seed", "3", "--once", "--json"]
    )
    assert opened.exit_code == 0, opened.output
    assert [json.loads(line)["action"] for line in opened.stdout.splitlines()] == ["opened"]
    federation.play_open_round()
    finished = runner.invoke(
        app,
        ["matchmaker", "run", *common, "--dev-account", "1", "--seed", "3", "--max-rounds", "1", "--json"],
    )
    assert finished.exit_code == 0, finished.output
    assert json.loads(finished.stdout.splitlines()[0])["action"] == "finalized"

    replay = runner.invoke(app, ["audit", "replay", *common, "--json"])
    assert replay.exit_code == 0, replay.output
    report = json.loads(replay.stdout)
    assert report["summary"] == {"match": 1, "mismatch": 0, "unverifiable": 0}

    other_seed = runner.invoke(
        app, ["matchmaker", "run", *common, "--dev-account", "1", "--seed", "4", "--max-rounds", "1"]
    )
    assert other_seed.exit_code == 3  # a different seed is a different policy: the history does not replay
    assert "does not replay" in other_seed.output


def test_commands_explain_bad_setup(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["audit", "replay", "--manifest", str(tmp_path / "none.json")])
    assert missing.exit_code != 0
    both = runner.invoke(app, ["matchmaker", "run", "--manifest", str(tmp_path / "none.json")])
    assert both.exit_code == 1
    assert "exactly one" in both.output


def test_rounds_answer_503_while_the_store_cannot_deliver_a_record(federation: Federation) -> None:
    """The live replayer retries a store failure instead of judging the history unverifiable, so
    the API says the store is unavailable (503), and recovers once the record is back."""
    matchmaker = federation.matchmaker()
    matchmaker.step()
    client = TestClient(create_app(federation.matchmaker()))  # a fresh process: nothing replayed yet
    cid = cid_text(matchmaker.sync()[0].rounds[1].decision_cid)
    path = next(path for path in (federation.store.root / "objects").rglob(cid) if path.is_file())
    saved = path.read_bytes()
    path.unlink()
    answer = client.get("/rounds")
    assert answer.status_code == 503
    assert "store unavailable" in answer.json()["detail"]
    path.write_bytes(saved)
    rounds = client.get("/rounds").json()["items"]
    assert [entry["verdict"] for entry in rounds] == ["match"]
