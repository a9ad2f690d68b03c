"""The compose deployment: valid for docker-compose, and every knexa service runs a real CLI command."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml  # type: ignore[import-untyped]
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_BIN = ROOT / ".venv-compose" / "bin" / "docker-compose"
OUR_IMAGE = "knexa:local"
ANVIL = "/app/tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return data


def cli_app() -> typer.Typer:
    """`knexa.cli.app`, which mounts every package's commands (the explorer's among them)."""
    from knexa.cli import GROUPS, app

    assert "explorer" in GROUPS
    return app


def knexa_commands(command: list[str] | str) -> list[list[str]]:
    """The `knexa ...` invocations of a service command (a list, or `sh -c` with ||/&&/; chains)."""
    argv = shlex.split(command) if isinstance(command, str) else [str(part) for part in command]
    if argv[:2] == ["sh", "-c"]:
        segments = re.split(r"\|\||&&|;", argv[2])
        return [shlex.split(segment) for segment in segments if segment.strip()]
    return [argv]


def test_compose_file_validates_with_docker_compose() -> None:
    if not COMPOSE_BIN.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{COMPOSE_BIN} is missing in CI: mk/explorer.mk installs it (make pytest)")
        pytest.skip(f"{COMPOSE_BIN} not installed (run `make pytest` or `make compose-venv`)")
    result = subprocess.run(
        [str(COMPOSE_BIN), "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_service_of_our_image_runs_a_real_project_command() -> None:
    app = cli_app()
    runner = CliRunner()
    checked = 0
    for name, service in compose()["services"].items():
        if service.get("image") != OUR_IMAGE:
            continue
        command = service.get("command")
        assert command, f"service {name} runs our image without a command"
        if isinstance(command, list) and command[0] == ANVIL:
            assert "--prune-history" in command, "anvil must run with --prune-history (disk leak)"
            dependencies = json.loads((ROOT / "tools" / "package.json").read_text())["dependencies"]
            assert "@foundry-rs/anvil-linux-amd64" in dependencies
            checked += 1
            continue
        for argv in knexa_commands(command):
            assert argv[0] == "knexa", f"service {name} runs {argv[0]!r}, not a knexa command"
            words = [word for word in argv[1:] if not word.startswith("-")]
            path: list[str] = []
            for word in words:  # the sub-command path: leading words that are not option values
                probe = runner.invoke(app, [*path, word, "--help"], env={"COLUMNS": "240"})
                if probe.exit_code != 0:
                    break
                path.append(word)
            result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "240"})
            assert path, f"service {name}: `{' '.join(argv)}` names no knexa sub-command"
            assert result.exit_code == 0, f"service {name}: `knexa {' '.join(path)}` is not a command"
            for option in (word for word in argv if word.startswith("--")):
                assert option in result.output, f"service {name}: `knexa {' '.join(path)}` has no {option}"
            checked += 1
    assert checked >= 3  # anvil, the deployer's two commands, the explorer


def test_ports_are_loopback_only_and_images_pinned() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        image = service.get("image", "")
        assert image == OUR_IMAGE or re.search(r":v?\d+\.\d+\.\d+$", image), f"{name}: unpinned image {image}"
        assert "healthcheck" in service or name == "deployer", f"{name} has no health check"
    assert "ports" not in services["ipfs"], "the IPFS API must stay on the compose network"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER knexa$", dockerfile, re.MULTILINE)
    assert "python:3.11.11-slim-bookworm" in dockerfile
    assert ":latest" not in dockerfile


def test_otterscan_uses_only_the_explorers_sourcify_tree() -> None:
    config_file = json.loads((ROOT / "docker" / "otterscan-config.json").read_text())
    environment = compose()["services"]["otterscan"]["environment"]
    assert json.loads(environment["OTTERSCAN_CONFIG"]) == config_file
    ours = "http://127.0.0.1:8000/sourcify"
    (named,) = config_file["sourcify"]["sources"].values()  # current Otterscan: named sources
    assert named == {"url": ours, "backendFormat": "RepositoryV1"}
    assert set(config_file["sourcifySources"].values()) == {ours}  # older Otterscan releases
    assert "sourcify.dev" not in json.dumps(config_file)
    assert config_file["experimental"] is False  # Anvil has no ots2_ methods
