"""Start and stop a real IPFS node, offline, on free loopback ports, with its repo in a folder.

A Kubo `ipfs` binary on PATH (or named by `KNEXA_IPFS_BINARY`) is used when present; otherwise the
project-local js-ipfs in `tools/ipfs` (installed by `make ipfs`, see mk/ipfs.mk and
docs/toolchain.md). Both serve the same Kubo RPC API, which is all `IpfsStore` needs.

The node never dials out: it runs with `--offline`, an empty bootstrap list, MDNS off, and every
listener on 127.0.0.1. It runs in its own session, and `stop()` signals the whole process group, so
no helper process outlives it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template
from types import TracebackType
from typing import Literal

import httpx

from exchange.errors import StoreUnavailableError

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent


class IpfsNotInstalledError(StoreUnavailableError):
    """Neither a Kubo binary nor the project-local js-ipfs is available."""


def ipfs_tools_dir() -> Path:
    """The folder of the project-local js-ipfs (`tools/ipfs`)."""
    return Path(os.environ.get("KNEXA_IPFS_TOOLS_DIR", REPO_ROOT / "tools" / "ipfs"))


@dataclass(frozen=True)
class IpfsImplementation:
    kind: Literal["kubo", "js-ipfs"]
    executable: Path


def find_ipfs() -> IpfsImplementation:
    """Kubo if it is on PATH (or `KNEXA_IPFS_BINARY`), else the project-local js-ipfs."""
    override = os.environ.get("KNEXA_IPFS_BINARY")
    if override:
        return IpfsImplementation("kubo", Path(override))
    kubo = shutil.which("ipfs")
    if kubo:
        return IpfsImplementation("kubo", Path(kubo))
    cli = ipfs_tools_dir() / "node_modules" / "ipfs" / "src" / "cli.js"
    if cli.is_file() and shutil.which("node"):
        return IpfsImplementation("js-ipfs", cli)
    raise IpfsNotInstalledError(
        f"no IPFS node available: run `make ipfs` (installs js-ipfs into {ipfs_tools_dir()}; "
        "`make pytest` runs it first), or put a Kubo `ipfs` binary on PATH"
    )


def free_port() -> int:
    """A TCP port that was free on the loopback interface a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


class IpfsNode:
    """A child IPFS daemon; use as a context manager or call `start()`/`stop()`.

    `repo_dir` None means a fresh temporary folder, deleted on `stop()`.
    """

    def __init__(
        self, repo_dir: Path | None = None, implementation: IpfsImplementation | None = None
    ) -> None:
        self.implementation = implementation or find_ipfs()
        self._own_dir = repo_dir is None
        self.base_dir = Path(tempfile.mkdtemp(prefix="knexa-ipfs-")) if repo_dir is None else Path(repo_dir)
        self.repo_dir = self.base_dir / "repo"
        self.log_path = self.base_dir / "daemon.log"
        self.api_port = free_port()
        self.ports = {"API_PORT": self.api_port, "GATEWAY_PORT": free_port(), "RPC_PORT": free_port()}
        self.ports["SWARM_PORT"] = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.api_port}"

    @property
    def kind(self) -> str:
        return self.implementation.kind

    # --- start --------------------------------------------------------------------------------

    def _js_ipfs_command(self, env: dict[str, str]) -> list[str]:
        tools = ipfs_tools_dir()
        template = Template((tools / "config.template.json").read_text())
        config = self.base_dir / "init-config.json"
        config.write_text(template.substitute({key: str(value) for key, value in self.ports.items()}))
        polyfill = f"--require {tools / 'polyfill.cjs'}"  # Node 20 lacks Promise.withResolvers
        env["NODE_OPTIONS"] = f"{env.get('NODE_OPTIONS', '')} {polyfill}".strip()
        node = shutil.which("node") or "node"
        daemon = ["daemon", "--offline", "--init-profile", "test", "--init-config", str(config)]
        return [node, str(self.implementation.executable), *daemon]

    def _kubo_command(self, env: dict[str, str]) -> list[str]:
        binary = str(self.implementation.executable)
        if not (self.repo_dir / "config").exists():
            subprocess.run(
                [binary, "init", "--profile", "test"], env=env, check=True, capture_output=True, timeout=60
            )
        config_path = self.repo_dir / "config"
        config = json.loads(config_path.read_text())
        addresses = config.setdefault("Addresses", {})
        addresses["API"] = f"/ip4/{LOOPBACK}/tcp/{self.ports['API_PORT']}"
        addresses["Gateway"] = f"/ip4/{LOOPBACK}/tcp/{self.ports['GATEWAY_PORT']}"
        addresses["Swarm"] = [f"/ip4/{LOOPBACK}/tcp/{self.ports['SWARM_PORT']}"]
        addresses["Announce"] = []
        config["Bootstrap"] = []
        config.setdefault("Discovery", {}).setdefault("MDNS", {})["Enabled"] = False
        config_path.write_text(json.dumps(config, indent=2))
        return [binary, "daemon", "--offline"]

    def start(self, timeout_s: float = 60.0) -> IpfsNode:
        if self._process is not None:
            raise RuntimeError("the IPFS node is already running")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "IPFS_PATH": str(self.repo_dir)}
        command = self._kubo_command(env) if self.kind == "kubo" else self._js_ipfs_command(env)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() reaches every helper
            )
        try:
            self._wait_ready(timeout_s)
        except StoreUnavailableError:
            self.stop(remove=False)
            raise
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise StoreUnavailableError(f"the {self.kind} daemon exited during start:\n{self.log_tail()}")
            try:
                answer = httpx.post(f"{self.api_url}/api/v0/id", timeout=2.0, trust_env=False)
                if answer.status_code == 200:
                    return
                last_error = f"HTTP {answer.status_code}"
            except httpx.HTTPError as error:
                last_error = str(error)
            time.sleep(0.1)
        raise StoreUnavailableError(
            f"the {self.kind} daemon did not answer on {self.api_url} within {timeout_s} s "
            f"({last_error}):\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # --- stop ---------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self, timeout_s: float = 10.0, *, remove: bool = True) -> None:
        """SIGTERM to the process group, SIGKILL if it lingers; then delete a temporary repo."""
        process = self._process
        self._process = None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            # Helpers the daemon started share its group; make sure none survives it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        if remove and self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> IpfsNode:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
