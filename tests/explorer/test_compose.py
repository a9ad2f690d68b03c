"""The compose deployment: valid for docker-compose, every knexa service runs a real CLI command, and the
fixes found by running it on a real engine hold (read statically here; `make compose-smoke` runs it)."""

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
OVERLAYS = sorted(ROOT.glob("docker-compose.*.yml"))
COMPOSE_BIN = ROOT / ".venv-compose" / "bin" / "docker-compose"
OUR_IMAGE = "knexa:local"
ANVIL = "/app/tools/bin/anvil"


def compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def merged(overlay: Path) -> dict[str, Any]:
    """docker-compose.yml with an overlay on top (services' keys replaced, as compose does for these)."""
    base = compose()
    for name, service in compose(overlay)["services"].items():
        base["services"][name] = {**base["services"].get(name, {}), **service}
    return base


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


@pytest.mark.parametrize("overlay", [None, *OVERLAYS], ids=lambda path: path.name if path else "alone")
def test_compose_file_validates_with_docker_compose(overlay: Path | None) -> None:
    if not COMPOSE_BIN.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{COMPOSE_BIN} is missing in CI: mk/explorer.mk installs it (make pytest)")
        pytest.skip(f"{COMPOSE_BIN} not installed (run `make pytest` or `make compose-venv`)")
    files = ["-f", str(COMPOSE_FILE), *(["-f", str(overlay)] if overlay else [])]
    result = subprocess.run(
        [str(COMPOSE_BIN), *files, "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("overlay", [None, *OVERLAYS], ids=lambda path: path.name if path else "alone")
def test_every_service_of_our_image_runs_a_real_project_command(overlay: Path | None) -> None:
    app = cli_app()
    runner = CliRunner()
    checked = 0
    for name, service in (merged(overlay) if overlay else compose())["services"].items():
        if service.get("image") != OUR_IMAGE:
            continue
        command = service.get("command")
        assert command, f"service {name} runs our image without a command"
        if isinstance(command, list) and command[0] == ANVIL:
            pruned = "--prune-history" in command
            assert pruned or command[command.index("--max-persisted-states") + 1] == "0", (
                "anvil must not write every block's state to disk (the disk leak)"
            )
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
        assert "healthcheck" in service or name in ("deployer", "zoo"), f"{name} has no health check"
    assert "ports" not in services["ipfs"], "the IPFS API must stay on the compose network"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER knexa$", dockerfile, re.MULTILINE)
    assert re.search(r"^ARG BASE_IMAGE=debian:\d+\.\d+-slim$", dockerfile, re.MULTILINE)
    assert ":latest" not in dockerfile


# The keys Otterscan v2.6.0 reads from its config (its OtterscanConfig type); anything else is ignored.
OTTERSCAN_260_KEYS = {
    "erigonURL",
    "beaconAPI",
    "assetsURLPrefix",
    "experimental",
    "experimentalFixedChainId",
    "chainInfo",
    "branding",
    "sourcifySources",
    "priceOracleInfo",
    "opChainSettings",
    "WIP_customAddressLabels",
}


def test_otterscan_uses_only_the_explorers_sourcify_tree() -> None:
    config_file = json.loads((ROOT / "docker" / "otterscan-config.json").read_text())
    service = compose()["services"]["otterscan"]
    assert service["image"] == "otterscan/otterscan:v2.6.0"
    assert json.loads(service["environment"]["OTTERSCAN_CONFIG"]) == config_file
    ignored = set(config_file) - OTTERSCAN_260_KEYS  # e.g. rpcURL, sourcify (a later release's key)
    assert not ignored, ignored
    ours = "http://127.0.0.1:8000/sourcify"
    assert config_file["sourcifySources"] == {"ipfs": ours, "central_server": ours}
    assert config_file["assetsURLPrefix"] == ""  # absent: v2.6.0 decodes no signatures or topics
    assert "sourcify.dev" not in json.dumps(config_file)
    assert config_file["experimental"] is False  # Anvil has no ots2_ methods


def dockerfile_stages() -> dict[str, str]:
    """The Dockerfile's stages by name, each its text from FROM to the next FROM."""
    text = (ROOT / "Dockerfile").read_text()
    parts = re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]
    return {part.split()[2]: part for part in parts}


def created_and_owned(stage: str) -> set[str]:
    """Directories a stage's RUN lines both create (mkdir -p) and hand to knexa (chown knexa:knexa)."""
    text = stage.replace("\\\n", " ")
    made = {path for line in re.findall(r"mkdir -p ([^&;\n]+)", text) for path in line.split()}
    owned = {path for line in re.findall(r"chown knexa:knexa ([^&;\n]+)", text) for path in line.split()}
    return made & owned


@pytest.mark.parametrize("overlay", [None, *OVERLAYS], ids=lambda path: path.name if path else "alone")
def test_every_volume_mount_point_exists_in_the_image_and_belongs_to_knexa(overlay: Path | None) -> None:
    """Docker creates a new named volume from the image's directory, owner included: a mount point the
    image lacks becomes a root-owned volume that the non-root user cannot write (podman hides this)."""
    stages = dockerfile_stages()
    images = {OUR_IMAGE: "runtime", "knexa-ipfs:local": "ipfs"}
    checked = 0
    for name, service in (merged(overlay) if overlay else compose())["services"].items():
        stage = images.get(service.get("image", ""))
        if stage is None:
            continue
        assert re.search(r"^USER knexa$", stages[stage], re.MULTILINE), f"{stage} must not run as root"
        for volume in service.get("volumes", []):
            target = volume.split(":")[1]
            assert target in created_and_owned(stages[stage]), f"{name}: {target} is not made and chowned"
            checked += 1
    assert checked >= 8


def test_no_anonymous_volumes_and_the_learners_cache_is_a_writable_volume() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"^VOLUME", dockerfile, re.MULTILINE), "VOLUME makes unused anonymous volumes"
    runtime = dockerfile_stages()["runtime"]
    cache = re.search(r"KNEXA_CACHE=(\S+)", runtime)
    assert cache
    assert cache.group(1) in created_and_owned(runtime)
    services = compose()["services"]
    for name in ("zoo", "org-a", "org-b", "org-c"):
        assert f"zoo-cache:{cache.group(1)}" in services[name]["volumes"], name


def test_the_default_stack_runs_real_learners_and_the_overlay_synthetic_ones() -> None:
    services = compose()["services"]
    assert services["zoo"]["command"][:3] == ["knexa", "agent", "build-zoo"]
    orgs = [name for name in services if name.startswith("org-")]
    assert len(orgs) == 3
    for name in orgs:
        command = services[name]["command"]
        assert command[command.index("--learner") + 1] == "lora", name
        assert services[name]["depends_on"]["zoo"] == {"condition": "service_completed_successfully"}
        assert services["matchmaker"]["depends_on"][name] == {"condition": "service_healthy"}
    synthetic = merged(ROOT / "docker-compose.synthetic.yml")["services"]
    for name in orgs:
        command = synthetic[name]["command"]
        assert command[command.index("--learner") + 1] == "synthetic", name


def test_healthchecks_ask_the_running_services() -> None:
    kubo = compose()["services"]["ipfs"]["healthcheck"]["test"]
    assert "--api=/ip4/127.0.0.1/tcp/5001" in kubo, "a bare `ipfs id` passes before the API is up"
    js = merged(ROOT / "docker-compose.jsipfs.yml")["services"]["ipfs"]
    assert js["image"] == "knexa-ipfs:local"
    assert js["build"]["target"] == "ipfs"
    assert "/api/v0/id" in js["healthcheck"]["test"]
    assert "data=b''" in js["healthcheck"]["test"]
    assert "ipfs" in dockerfile_stages()
    # podman-compose appends an overlay's list to the base file's: tests an overlay replaces are strings
    assert isinstance(kubo, str)
    assert isinstance(js["healthcheck"]["test"], str)
    for name, service in compose()["services"].items():
        if name not in ("deployer", "zoo"):  # the one-shot services
            test = service["healthcheck"]["test"]
            assert isinstance(test, str) or test[0] in ("CMD", "CMD-SHELL"), name


def test_the_file_names_the_first_docker_compose_with_its_conditions() -> None:
    text = COMPOSE_FILE.read_text()
    assert "service_completed_successfully" in text
    assert "docker-compose >= 1.29" in text
    assert "1.27" not in text


def test_anvil_history_choice_is_explicit() -> None:
    """--prune-history with no depth keeps memory flat but only the latest state (Otterscan's historical
    calls fail); the history overlay keeps a window in memory and writes no state to disk."""
    command = compose()["services"]["anvil"]["command"]
    after = command[command.index("--prune-history") + 1]
    assert after.startswith("--"), "a depth after --prune-history is not honoured by Anvil 1.7.1"
    history = merged(ROOT / "docker-compose.history.yml")["services"]["anvil"]["command"]
    assert "--prune-history" not in history
    assert history[history.index("--max-persisted-states") + 1] == "0"
    assert "ots_hasCode" in COMPOSE_FILE.read_text()


def test_the_image_builds_for_both_architectures_with_cpu_torch_and_an_extra_ca() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ARG TORCH_INDEX_URL="https://download.pytorch.org/whl/cpu"' in dockerfile
    build = compose()["x-knexa-image"]["build"]["args"]
    assert build["TORCH_INDEX_URL"] == "${KNEXA_TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
    assert build["KNEXA_EXTRAS"] == "ml"
    assert 'ARG EXTRA_CA_BUNDLE=""' in dockerfile
    assert "update-ca-certificates" in dockerfile
    for variable in ("PIP_CERT", "NODE_EXTRA_CA_CERTS"):
        assert f"{variable}=/etc/ssl/certs/ca-certificates.crt" in dockerfile
    dependencies = json.loads((ROOT / "tools" / "package.json").read_text())["dependencies"]
    version = dependencies["@foundry-rs/anvil-linux-amd64"]
    for tool in ("anvil", "cast"):
        assert f"@foundry-rs/{tool}-linux-arm64@{version}" in dockerfile
    assert "amd64)" in dockerfile
    assert "arm64)" in dockerfile
    ignored = (ROOT / ".gitignore").read_text().split()
    assert {"docker/certs/*", "docker/wheels/*"} <= set(ignored), "certificates and wheels stay local"


def test_the_image_copies_every_package_of_the_project() -> None:
    """A package missing from the Dockerfile's COPY lines is missing from the editable install."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    packages = re.search(r"^packages = \[(.*)\]$", pyproject, re.MULTILINE)
    assert packages
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile_stages()["python"], re.MULTILINE))
    wanted = {name.strip().strip('"') for name in packages.group(1).split(",")}
    assert wanted <= copied, wanted - copied
