"""Start a market's participants as separate OS processes (the real CLI), for outage and reset tests."""

from __future__ import annotations

import os
import sys
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
