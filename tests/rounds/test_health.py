"""`/health` reports the round driver's real state: a chain outage turns it to 503 with the driver's
current error, the driver keeps retrying (capped backoff), and after the chain is back it is ok
again with a new last successful step (real Anvil, stopped and restarted from its state file)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from chain.anvil import AnvilNode
from chain.devchain import DevChain
from clikit.backoff import Backoff
from exchange.local import LocalStore
from matchmaker.api import create_app
from matchmaker.driver import Driver
from matchmaker.policies import PolicyParams
from matchmaker.service import Matchmaker


def _until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    give_up = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < give_up, "the condition never held"
        time.sleep(0.1)


def test_health_follows_the_driver_through_a_chain_outage(tmp_path: Path) -> None:
    node = AnvilNode(state_file=tmp_path / "state.json")
    node.start()
    stop = threading.Event()
    try:
        chain = DevChain(node=node).start()
        matchmaker = Matchmaker(
            chain.matchmaker(), LocalStore(tmp_path / "store"), PolicyParams(), from_block=0
        )
        driver = Driver(matchmaker, poll_s=0.1, backoff=Backoff(initial_s=0.1, cap_s=0.5))
        app = create_app(matchmaker, driver)
        driver.lock = app.state.lock
        client = TestClient(app)
        thread = threading.Thread(target=driver.run, args=(stop,), daemon=True)
        thread.start()
        _until(lambda: driver.state.last_success is not None)
        healthy = client.get("/health")
        assert healthy.status_code == 200
        assert healthy.json()["driver"]["status"] == "ok"
        assert healthy.json()["driver"]["last_success"].startswith("idle")  # no organization yet

        node.stop()
        _until(lambda: driver.state.failures >= 3)  # retried, not given up
        down = client.get("/health")
        assert down.status_code == 503
        body = down.json()
        assert body["block"] is None
        assert body["driver"]["status"] == "retrying"
        assert body["driver"]["error"].startswith("NodeUnavailableError")
        assert thread.is_alive()
        assert client.get("/rounds").status_code == 503  # never a 500 while the chain is down

        node.start()
        _until(lambda: driver.state.error is None)
        back = client.get("/health")
        assert back.status_code == 200
        assert back.json()["driver"]["failures"] == 0
        assert back.json()["driver"]["last_success_at"] >= body["driver"]["error_since"]
    finally:
        stop.set()
        node.stop()
