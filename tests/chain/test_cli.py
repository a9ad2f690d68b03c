"""The `knexa chain ...` commands against a real Anvil node, and the chain demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from chain.anvil import AnvilNode, free_port, wait_for_rpc
from chain.demo import run_chain_demo
from knexa.cli import app

runner = CliRunner()


def test_deploy_status_events_json(anvil_node: AnvilNode, tmp_path: Path) -> None:
    manifest = tmp_path / "deployment.json"
    deployed = runner.invoke(
        app,
        [
            "chain",
            "deploy",
            "--rpc",
            anvil_node.rpc_url,
            "--dev-account",
            "0",
            "--manifest",
            str(manifest),
            "--json",
        ],
    )
    assert deployed.exit_code == 0, deployed.output
    address = json.loads(deployed.output)["market_address"]
    assert json.loads(manifest.read_text())["market_address"] == address

    status = runner.invoke(app, ["chain", "status", "--manifest", str(manifest), "--json"])
    assert status.exit_code == 0, status.output
    report = json.loads(status.output)
    assert (report["market"], report["next_round"], report["organizations"]) == (address, 1, [])

    events = runner.invoke(app, ["chain", "events", "--manifest", str(manifest), "--json"])
    assert events.exit_code == 0, events.output
    assert {event["event"] for event in json.loads(events.output)} >= {"RoleGranted", "ParametersUpdated"}


def test_deploy_needs_exactly_one_key_source(anvil_node: AnvilNode, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["chain", "deploy", "--rpc", anvil_node.rpc_url, "--manifest", str(tmp_path / "m")]
    )
    assert result.exit_code == 1
    assert "exactly one" in result.output
    assert not (tmp_path / "m").exists()


def test_status_explains_missing_manifest_and_dead_node(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["chain", "status", "--manifest", str(tmp_path / "none.json")])
    assert missing.exit_code == 1
    assert "no deployment manifest" in missing.output
    manifest = tmp_path / "deployment.json"
    with AnvilNode() as node:
        runner.invoke(
            app, ["chain", "deploy", "--rpc", node.rpc_url, "--dev-account", "0", "--manifest", str(manifest)]
        )
    dead = runner.invoke(app, ["chain", "status", "--manifest", str(manifest)])
    assert dead.exit_code == 1
    assert "cannot reach" in dead.output


def test_chain_up_deploys_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    manifest = tmp_path / "deployment.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "knexa", "chain", "up", "--port", str(port), "--manifest", str(manifest)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_for_rpc(f"http://127.0.0.1:{port}", timeout_s=30)
        deadline = time.monotonic() + 30
        while not manifest.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert json.loads(manifest.read_text())["chain_id"] == 31337
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    assert process.returncode == 0


def test_chain_demo_plays_one_round() -> None:
    result = run_chain_demo()
    names = [event.name for event in result.events]
    assert names.count("OrganizationRegistered") == 3
    finalized = next(event for event in result.events if event.name == "RoundFinalized")
    assert finalized.args["settledNow"] == 1  # the two reported pairs settled when they reported
    slashed = [event for event in result.events if event.name == "PairSettled" and event.args["slashed"] > 0]
    assert len(slashed) == 1
    assert names.count("Withdrawn") == 3
    assert [org["name"] for org in result.organizations] == ["acme-code", "bitforge", "codewell"]
