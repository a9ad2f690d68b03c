"""Replay verdicts, recomputed by the explorer itself through `matchmaker.audit.verify_rounds`.

The explorer never takes the matchmaker's word for its own honesty: it replays the policy from the
public record (chain events + documents in the content store). The replay is injectable (`Verifier`)
so tests can pin a verdict; without a content store every round shows "unavailable" with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from chain.client import MarketClient
from explorer.models import VERDICT_UNAVAILABLE, VerdictView
from matchmaker.audit import verify_rounds


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


Verifier = Callable[[MarketClient, Any, int], Sequence[RoundVerdictLike]]
"""`(market, store, from_block) -> verdicts`, the signature of `matchmaker.audit.verify_rounds`."""


class VerifierUnavailableError(RuntimeError):
    """The replay cannot run here (no content store is configured)."""


def matchmaker_verifier(market: MarketClient, store: Any, from_block: int) -> Sequence[RoundVerdictLike]:
    """The default verifier: `matchmaker.audit.verify_rounds` over the explorer's content store."""
    if store is None:
        raise VerifierUnavailableError("the replay needs the content store (--store) for decision records")
    verdicts: Sequence[RoundVerdictLike] = verify_rounds(market, store, from_block)
    return verdicts


def run_verifier(
    verifier: Verifier, market: MarketClient, store: Any, from_block: int, round_ids: Sequence[int]
) -> dict[int, VerdictView]:
    """One `VerdictView` per round id; failures of the replay itself become "unavailable" verdicts."""
    try:
        results = verifier(market, store, from_block)
    except VerifierUnavailableError as error:
        return _all_unavailable(round_ids, str(error))
    except Exception as error:  # a failing replay must not take the explorer down
        return _all_unavailable(round_ids, f"the replay failed: {type(error).__name__}: {error}")
    verdicts: dict[int, VerdictView] = {}
    for result in results:
        verdicts[int(result.round_id)] = VerdictView(
            round_id=int(result.round_id),
            verdict=str(result.verdict),
            first_difference=result.first_difference,
            detail=str(result.detail),
        )
    return verdicts


def _all_unavailable(round_ids: Sequence[int], detail: str) -> dict[int, VerdictView]:
    return {round_id: VerdictView(round_id, VERDICT_UNAVAILABLE, None, detail) for round_id in round_ids}
