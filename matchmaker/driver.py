"""The loop that drives a `Matchmaker` and survives outages of the chain or the store.

`knexa matchmaker run` and the `serve` background thread both use it. A step that fails with a
transient error (the chain or the store down, an RPC error, the contract's constants unreadable)
is retried with capped exponential backoff (`clikit.backoff`); the matchmaker rebuilds everything
it needs from chain + store on the next step, so it resumes where it was. Only a halt (its own
history does not replay) stops the loop for good. `state` is what `/health` reports.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from chain.errors import ChainError
from clikit.backoff import Backoff, BackoffState
from exchange.errors import ExchangeError
from market.errors import ParametersError
from matchmaker.service import Matchmaker, MatchmakerHalted, StepResult

log = logging.getLogger("knexa.matchmaker")
TRANSIENT_ERRORS = (ChainError, ExchangeError, ParametersError)


class Driver:
    """Steps `matchmaker` until stopped; `lock` (if any) is held around each step."""

    def __init__(
        self,
        matchmaker: Matchmaker,
        *,
        poll_s: float = 1.0,
        lock: Any = None,
        backoff: Backoff | None = None,
        on_step: Callable[[StepResult], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.matchmaker = matchmaker
        self.poll_s = poll_s
        self.lock = lock if lock is not None else contextlib.nullcontext()
        self.backoff = backoff or Backoff()
        self.on_step = on_step
        self.on_error = on_error

    @property
    def state(self) -> BackoffState:
        return self.backoff.state

    def run(self, stop: threading.Event) -> None:
        """Step until `stop` is set; raises `MatchmakerHalted` (after recording it) on a halt."""
        while not stop.is_set():
            try:
                with self.lock:
                    result = self.matchmaker.step()
            except MatchmakerHalted as error:
                self.backoff.stop(f"halted: {error}")
                raise
            except TRANSIENT_ERRORS as error:
                first = self.state.error is None
                wait = self.backoff.failed(error)
                if first:
                    message = f"step failed, retrying with backoff: {type(error).__name__}: {error}"
                    log.warning("%s", message)
                    if self.on_error is not None:
                        self.on_error(message)
                stop.wait(wait)
                continue
            if self.backoff.succeeded(f"{result.action}: {result.detail}"):
                log.warning("recovered after an outage: %s", result.action)
                if self.on_error is not None:
                    self.on_error("recovered")
            if self.on_step is not None:
                self.on_step(result)
            if result.action in ("waiting", "idle"):
                stop.wait(self.poll_s)
