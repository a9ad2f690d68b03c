"""A round's profile inputs, fetched so that no single organization can stall or crash the market.

The live matchmaker fetches every eligible organization's profile within a time budget
(`ProfileFetcher`). An organization whose profile cannot be used is left out of that round only,
and the decision record says who and why (`DecisionRecord.excluded`):

- ``unavailable``: the store did not deliver the document before the budget ran out (nobody serves
  the CID, the node is down). This is a fact about that moment, so a replay takes it from the
  record instead of re-fetching (and an auditor can see every organization a matchmaker claimed
  was unavailable);
- ``oversized``: the document is larger than `MAX_PROFILE_BYTES`;
- ``invalid: <error>``: the profile CID on chain is not a CID, the document does not parse or breaks
  a bound (`market.documents`), or its features do not fit the policy.

Oversized and invalid are facts about content-addressed bytes: they are cached per CID and a replay
recomputes them, so the record's exclusions are checked like every other field. Unavailability is
never cached: the organization is tried again in the next round.

`cap_pairs` keeps a decision within the contract's `maxPairsPerRound` (the best-scored pairs), so
a large market never makes `openRound` revert.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from exchange.cid import cid_text
from exchange.errors import ExchangeError, OversizedError
from exchange.store import ContentStore
from market.documents import MAX_REASON, ProfileDoc
from market.ledger import Ledger
from matchmaker.context import arm_index, build_contexts
from matchmaker.policies import Decision

UNAVAILABLE = "unavailable"
OVERSIZED = "oversized"
INVALID = "invalid"
MAX_PROFILE_BYTES = 1 << 20
DEFAULT_FETCH_BUDGET_S = 30.0


class HistoryUnavailable(Exception):  # noqa: N818 - a state, not a programming error
    """A document the replay needs cannot be fetched or parsed."""


def reason(kind: str, detail: str = "") -> str:
    """An exclusion reason as recorded: the kind, then the error, cut to the record's bound."""
    text = f"{kind}: {detail}" if detail else kind
    return text[:MAX_REASON]


@dataclass(frozen=True)
class ProfileInputs:
    """Parsed profiles by CID, and the eligible organizations left out with the reason."""

    docs: Mapping[str, ProfileDoc] = field(default_factory=dict)
    excluded: Mapping[str, str] = field(default_factory=dict)


class ProfileFetcher:
    """Fetches the eligible organizations' profiles; caches what the bytes say (a document or a
    content defect) by CID, never a failure to fetch."""

    def __init__(
        self,
        store: ContentStore,
        budget_s: float = DEFAULT_FETCH_BUDGET_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.budget_s = budget_s
        self.clock = clock
        self._verdicts: dict[str, ProfileDoc | str] = {}  # CID -> document, or exclusion reason

    def _verdict(self, cid: str) -> ProfileDoc | str:
        """The document or the content defect; raises `ExchangeError` when it cannot be fetched."""
        if cid not in self._verdicts:
            try:
                data = self.store.get(cid, max_bytes=MAX_PROFILE_BYTES)
            except OversizedError:
                self._verdicts[cid] = OVERSIZED
            else:
                try:
                    self._verdicts[cid] = ProfileDoc.from_bytes(data)
                except (ExchangeError, ValueError) as error:
                    self._verdicts[cid] = reason(INVALID, f"{type(error).__name__}: {error}")
        return self._verdicts[cid]

    def fetch(self, ledger: Ledger, *, replay_unavailable: Mapping[str, str] | None = None) -> ProfileInputs:
        """Every eligible organization's profile, or the reason it is left out.

        Live (`replay_unavailable` None): a fetch failure, or the budget running out, excludes the
        organization as unavailable. Replay: the organizations the record names as unavailable are
        excluded without fetching, with the recorded reason; any other fetch failure raises
        `HistoryUnavailable`, because leaving that organization out would change the decision.
        """
        deadline = self.clock() + self.budget_s
        docs: dict[str, ProfileDoc] = {}
        excluded: dict[str, str] = {}
        for address in ledger.eligible():
            try:
                cid = cid_text(ledger.organizations[address].profile_cid)
            except ValueError as error:
                excluded[address] = reason(INVALID, f"profile CID: {error}")
                continue
            if replay_unavailable is not None and address in replay_unavailable:
                excluded[address] = replay_unavailable[address]
                continue
            if replay_unavailable is None and cid not in self._verdicts and self.clock() >= deadline:
                excluded[address] = reason(UNAVAILABLE, "the fetch budget ran out")
                continue
            try:
                verdict = self._verdict(cid)
            except ExchangeError as error:
                if replay_unavailable is not None:
                    raise HistoryUnavailable(f"profile {cid} of {address}: {error}") from error
                excluded[address] = reason(UNAVAILABLE, f"{type(error).__name__}: {error}")
                continue
            if isinstance(verdict, str):
                excluded[address] = verdict
            else:
                docs[cid] = verdict
        return ProfileInputs(docs, excluded)


def recorded_unavailable(excluded: Mapping[str, str]) -> dict[str, str]:
    """The organizations a record says were unavailable (which a replay cannot re-observe)."""
    return {org: why for org, why in excluded.items() if why.split(":", 1)[0] == UNAVAILABLE}


def cap_pairs(decision: Decision, max_pairs: int | None) -> Decision:
    """The decision with at most `max_pairs` chosen pairs: the best-scored ones (ties: arm order).

    Deterministic, so a replay that applies the same cap (read from the ledger at the inputs
    block) recomputes the same pairs.
    """
    if max_pairs is None or len(decision.pairs) <= max_pairs:
        return decision
    arms = decision.chosen_arms
    scores = decision.arm_values(arms)[2]
    order = np.lexsort((arms, -scores))[: max(0, max_pairs)]
    kept = np.sort(arms[order])  # arm order is (teacher, student) order
    teachers, students = (np.ascontiguousarray(a, dtype=np.int64) for a in decision.arm_pairs(kept))
    ids = decision.org_ids
    pairs = tuple((ids[int(t)], ids[int(s)]) for t, s in zip(teachers, students, strict=True))
    n = len(ids)
    return dataclasses.replace(
        decision,
        pairs=pairs,
        chosen_arms=arm_index(n, teachers, students),
        chosen_contexts=np.ascontiguousarray(build_contexts(decision.table, teachers, students)),
        total_score=float(decision.arm_values(kept)[2].sum()),
    )
