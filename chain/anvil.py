"""Start and stop a local Anvil node on a free loopback port.

Always runs with `--prune-history`: without it anvil keeps every block's state under
~/.foundry/anvil/tmp and never deletes it (see docs/toolchain.md).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import httpx

from chain.errors import NodeUnavailableError
from chain.paths import anvil_binary

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port that was free on the loopback interface a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_rpc(url: str, timeout_s: float = 15.0) -> int:
    """Poll `eth_chainId` until the node answers; returns the chain id."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            answer = httpx.post(
                url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=1.0
            )
            return int(answer.json()["result"], 16)
        except (httpx.HTTPError, KeyError, ValueError) as error:
            last_error = error
            time.sleep(0.05)
    raise NodeUnavailableError(f"no JSON-RPC answer from {url} within {timeout_s} s: {last_error}")


def terminate_group(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """Stop a child started with `start_new_session=True`: SIGTERM to its whole process group (a
    clean shutdown), SIGKILL if it lingers past `timeout_s`."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class AnvilNode:
    """A child Anvil process; use as a context manager or call `start()`/`stop()`.

    `block_time` None means automine (a block per transaction), which tests and the demo use.
    `gas_limit` None keeps Anvil's block gas limit (30M); the gas benchmark raises it so that it can
    measure a transaction that would not fit one 30M block.
    """

    def __init__(
        self,
        port: int | None = None,
        state_file: Path | None = None,
        block_time: float | None = None,
        chain_id: int = 31337,
        host: str = LOOPBACK,
        gas_limit: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.host = host
        self.state_file = state_file
        self.block_time = block_time
        self.chain_id = chain_id
        self.gas_limit = gas_limit
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        command = [
            str(anvil_binary()),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--prune-history",
            "--silent",
        ]
        if self.block_time is not None:
            command += ["--block-time", str(self.block_time)]
        if self.gas_limit is not None:
            command += ["--gas-limit", str(self.gas_limit)]
        if self.state_file is not None:
            # --state-interval 1 makes the state survive SIGKILL too.
            command += ["--state", str(self.state_file), "--state-interval", "1"]
        return command

    def start(self, timeout_s: float = 15.0) -> AnvilNode:
        if self._process is not None:
            raise RuntimeError("anvil is already running")
        self._process = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            wait_for_rpc(self.rpc_url, timeout_s)
        except NodeUnavailableError:
            stderr = self._collect_stderr()
            self.stop()
            raise NodeUnavailableError(f"anvil did not start on {self.rpc_url}: {stderr}") from None
        return self

    def _collect_stderr(self) -> str:
        if self._process is None or self._process.poll() is None or self._process.stderr is None:
            return ""
        return self._process.stderr.read().decode(errors="replace").strip()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (anvil then writes its state file), then SIGKILL if it lingers."""
        process = self._process
        if process is None:
            return
        self._process = None
        terminate_group(process, timeout_s)
        if process.stderr is not None:
            process.stderr.close()

    def __enter__(self) -> AnvilNode:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
