"""Capped exponential backoff (pure logic)."""

from __future__ import annotations

from clikit.backoff import Backoff


def test_waits_double_up_to_the_cap_and_a_success_resets_them() -> None:
    now = [100.0]
    backoff = Backoff(initial_s=1.0, cap_s=5.0, clock=lambda: now[0])
    waits = [backoff.failed(ConnectionError("down")) for _ in range(5)]
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.state.status == "retrying"
    assert backoff.state.error == "ConnectionError: down"
    assert backoff.state.error_since == 100.0
    now[0] = 130.0
    assert backoff.succeeded("opened round 3") is True
    assert backoff.succeeded("waiting") is False
    assert backoff.state.status == "ok"
    assert (backoff.state.last_success, backoff.state.last_success_at) == ("waiting", 130.0)
    assert backoff.failed(ConnectionError("down again")) == 1.0
    backoff.stop("halted")
    assert backoff.state.status == "stopped"
