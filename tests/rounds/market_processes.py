"""Start a market's participants as separate OS processes (the real CLI), for outage and reset tests."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from knexa.process_demo import Processes
from tests.org.conftest import PASSWORD


def process_env() -> dict[str, str]:
    """The environment the child processes get: this interpreter's path and the keystore password."""
    return {**os.environ, "KNEXA_PASSWORD": PASSWORD, "PYTHONPATH": os.pathsep.join(sys.path)}


def start_market(
    processes: Processes,
    rpc_url: str,
    manifest: Path,
    store: str,
    homes: dict[str, Path],
    round_blocks: int,
) -> dict[str, str]:
    """`knexa matchmaker run` (dev account 1) and one `knexa org join` per home, polling every 0.2 s."""
    env = process_env()
    processes.start(
        "matchmaker",
        [
            *("matchmaker", "run", "--rpc", rpc_url, "--manifest", str(manifest)),
            *("--store", store, "--dev-account", "1", "--round-blocks", str(round_blocks)),
            *("--poll", "0.2", "--json"),
        ],
        env,
    )
    for name, home in homes.items():
        processes.start(name, ["org", "join", "--home", str(home), "--poll", "0.2", "--json"], env)
    return env


def wait_for(
    condition: Callable[[], bool],
    what: str,
    logs: Path,
    timeout_s: float = 180.0,
    poll_s: float = 0.5,
    tail_chars: int = 1500,
) -> None:
    """Poll `condition` until true (errors count as not yet: the chain or the store may be down);
    on timeout fail with the tail of every process log."""
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        try:
            if condition():
                return
        except Exception:  # the chain or the store may be down while we look
            pass
        time.sleep(poll_s)
    tails = "\n".join(
        f"--- {log.name}\n{log.read_text()[-tail_chars:]}" for log in sorted(logs.glob("*.log"))
    )
    raise AssertionError(f"timed out waiting for {what}\n{tails}")
