"""Replay verdicts, recomputed by the explorer itself through `matchmaker.audit.Replayer`.

The explorer never takes the matchmaker's word for its own honesty: it replays the policy from the
public record (chain events + documents in the content store). The replay is injectable (`Verifier`)
so tests can pin a verdict; without a content store every round shows "unavailable" with the reason.

The default verifier (`ReplayVerifier`) is incremental: it keeps the replayer's state between calls,
so each decision record is fetched and each round recomputed once, not on every refresh. A replay
that could not go through (a document missing or the store down) starts afresh, at most once a
minute.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from chain.client import MarketClient
from chain.events import ChainEvent
from explorer.models import (
    VERDICT_PENDING,
    VERDICT_UNAVAILABLE,
    DisputeReplayView,
    DisputeView,
    RoundView,
    VerdictView,
)
from explorer.redact import redact_text
from market.parameters import read_constants
from matchmaker.audit import Replayer


class RoundVerdictLike(Protocol):
    """The shape of `matchmaker.audit.RoundVerdict` (read-only attributes)."""

    @property
    def round_id(self) -> int: ...

    @property
    def verdict(self) -> str: ...

    @property
    def first_difference(self) -> str | None: ...

    @property
    def detail(self) -> str: ...


Verifier = Callable[[MarketClient, Any, Sequence[ChainEvent]], Sequence[RoundVerdictLike]]
"""`(market, store, events) -> verdicts of every round in events` (the market's log in chain order)."""

VerifierFactory = Callable[[], Verifier]
"""A fresh verifier for a fresh index (after a chain reset nothing of the old replay is kept)."""


class VerifierUnavailableError(RuntimeError):
    """The replay cannot run here (no content store is configured)."""


class ReplayVerifier:
    """The default verifier: `matchmaker.audit.Replayer` over the explorer's content store, kept
    between calls so that each round is replayed once."""

    def __init__(self, retry_after_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.retry_after_s = retry_after_s
        self.clock = clock
        self._replayer: Replayer | None = None
        self._started_at = 0.0

    def __call__(
        self, market: MarketClient, store: Any, events: Sequence[ChainEvent]
    ) -> Sequence[RoundVerdictLike]:
        if store is None:
            raise VerifierUnavailableError(
                "the replay needs the content store (--store) for decision records"
            )
        stale = self._replayer is not None and self._replayer.broken_at is not None
        if self._replayer is None or (stale and self.clock() - self._started_at >= self.retry_after_s):
            # a broken history may come from a store outage: replay it from the start, now and then
            self._replayer = Replayer(store, read_constants(market).initial_reputation)
            self._started_at = self.clock()
        return self._replayer.advance(events)


def run_verifier(
    verifier: Verifier,
    market: MarketClient,
    store: Any,
    events: Sequence[ChainEvent],
    round_ids: Sequence[int],
) -> dict[int, VerdictView]:
    """One `VerdictView` per round id; failures of the replay itself become "unavailable" verdicts."""
    try:
        results = verifier(market, store, events)
    except VerifierUnavailableError as error:
        return _all_unavailable(round_ids, str(error))
    except Exception as error:  # a failing replay must not take the explorer down
        return _all_unavailable(round_ids, redact_text(f"the replay failed: {type(error).__name__}: {error}"))
    verdicts: dict[int, VerdictView] = {}
    for result in results:
        verdicts[int(result.round_id)] = VerdictView(
            round_id=int(result.round_id),
            verdict=str(result.verdict),
            first_difference=result.first_difference,
            detail=redact_text(str(result.detail)),
            disputes=[
                DisputeReplayView(
                    pair_index=int(audit.pair_index),
                    verdict=str(audit.verdict),
                    first_difference=audit.first_difference,
                    detail=redact_text(str(audit.detail)),
                    recomputed_defective=audit.recomputed_defective,
                )
                for audit in getattr(result, "disputes", ())  # a pinned test verdict may have none
            ],
        )
    return verdicts


def _all_unavailable(round_ids: Sequence[int], detail: str) -> dict[int, VerdictView]:
    return {round_id: VerdictView(round_id, VERDICT_UNAVAILABLE, None, detail) for round_id in round_ids}


def with_verdict_disputes(disputes: Sequence[DisputeView], verdict: VerdictView) -> list[DisputeView]:
    """`disputes` with the replay's judgement of each one taken from the round's `verdict`."""
    replayed = {entry.pair_index: entry for entry in verdict.disputes}
    views = []
    for dispute in disputes:
        replay = replayed.get(dispute.pair_index)
        if replay is None:
            state = VERDICT_UNAVAILABLE if verdict.verdict == VERDICT_UNAVAILABLE else VERDICT_PENDING
            views.append(
                dataclasses.replace(
                    dispute, replay=state, replay_detail=verdict.detail, first_difference=None
                )
            )
        else:
            views.append(
                dataclasses.replace(
                    dispute,
                    replay=replay.verdict,
                    replay_detail=replay.detail,
                    first_difference=replay.first_difference,
                )
            )
    return views


def with_verdict(view: RoundView, verdict: VerdictView) -> RoundView:
    """A round view with `verdict`, its disputes showing what the replay said about each."""
    return dataclasses.replace(view, verdict=verdict, disputes=with_verdict_disputes(view.disputes, verdict))
