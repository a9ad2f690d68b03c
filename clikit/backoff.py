"""Capped exponential backoff for long-running commands that must outlive an outage.

`knexa matchmaker run|serve` and `knexa org join` keep going when the chain or the store is down
for minutes: each failed step waits `initial_s`, then twice as long, up to `cap_s`, and the first
success resets the wait. The state (`BackoffState`) is what a health endpoint reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_INITIAL_S = 0.5
DEFAULT_CAP_S = 30.0


@dataclass
class BackoffState:
    """The driver's real state: its last successful step, and the failure it is retrying now."""

    last_success_at: float | None = None  # wall-clock seconds (time.time)
    last_success: str | None = None
    error: str | None = None
    error_since: float | None = None
    failures: int = 0  # consecutive
    stopped: str | None = None  # why the driver stopped for good (None while it runs)

    @property
    def status(self) -> str:
        if self.stopped is not None:
            return "stopped"
        return "retrying" if self.error is not None else "ok"


@dataclass
class Backoff:
    initial_s: float = DEFAULT_INITIAL_S
    cap_s: float = DEFAULT_CAP_S
    clock: Callable[[], float] = time.time
    state: BackoffState = field(default_factory=BackoffState)

    def succeeded(self, what: str) -> bool:
        """Record a successful step; returns True when it ends an outage (to say so once)."""
        recovered = self.state.error is not None
        self.state.last_success_at = self.clock()
        self.state.last_success = what
        self.state.error = None
        self.state.error_since = None
        self.state.failures = 0
        return recovered

    def failed(self, error: BaseException) -> float:
        """Record a failed step; returns how long to wait before the next try."""
        if self.state.error is None:
            self.state.error_since = self.clock()
        self.state.error = f"{type(error).__name__}: {error}"
        self.state.failures += 1
        return float(min(self.cap_s, self.initial_s * 2 ** min(self.state.failures - 1, 32)))

    def stop(self, reason: str) -> None:
        self.state.stopped = reason
