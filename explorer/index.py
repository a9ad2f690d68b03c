"""The explorer's incremental index of one market: each refresh reads only what is new.

A refresh reads the events of the blocks mined since the last one (`market.ledger.LedgerFollower`),
re-reads the contract's view of only the organizations those events name, rebuilds only the rounds
that are still open, and replays only rounds without a final verdict. A finalized round's view and
verdict never change, so they are kept for as long as the index lives.

An index belongs to one market on one chain: `MarketIdentity` (chain id, market address, hash of the
deployment block). It is dropped, and the next one starts from the deployment block, when the
identity changes or the chain no longer holds the block the index has read through (same number,
other hash, or a head below it): a reset or a reorg. Nothing read from the old chain survives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from web3 import Web3

from chain.client import MarketClient, rpc_errors
from chain.events import ChainEvent
from explorer.models import (
    VERDICT_MATCH,
    VERDICT_MISMATCH,
    VERDICT_PENDING,
    EventView,
    OrganizationView,
    RoundView,
    VerdictView,
)
from explorer.verdicts import Verifier, run_verifier, with_verdict
from market.ledger import Ledger, LedgerFollower, LedgerRound

log = logging.getLogger(__name__)

FINAL_DOCUMENT_STATES = frozenset({"decoded", "invalid", "unrecognised"})
"""Document states that cannot change (content addressing): the others are fetched again."""
FINAL_VERDICTS = frozenset({VERDICT_MATCH, VERDICT_MISMATCH})
"""Verdicts a finalized round keeps; "unverifiable" may come from a store outage, so it is retried."""
REPLAY_RETRY_S = 60.0


@dataclass(frozen=True)
class MarketIdentity:
    chain_id: int
    market_address: str
    deployment_block_hash: str


def block_hash(market: MarketClient, number: int) -> str | None:
    """The hash of block `number` on the node now (None when the node has no such block)."""
    with rpc_errors():
        try:
            block = market.w3.eth.get_block(number)
        except Exception as error:  # web3 raises BlockNotFound, or a JSON-RPC error for a future block
            if type(error).__name__ in {"BlockNotFound", "Web3RPCError"}:
                return None
            raise
    value = block.get("hash")
    return None if value is None else bytes(value).hex()


def identity_of(market: MarketClient, deploy_block: int) -> MarketIdentity:
    return MarketIdentity(market.chain_id, market.address, block_hash(market, deploy_block) or "")


class Views(Protocol):
    """How the index turns chain state into view models (`explorer.data.ExplorerData` does)."""

    def organization_view(self, market: MarketClient, address: str, ledger: Ledger) -> OrganizationView: ...

    def round_view(
        self, market: MarketClient, record: LedgerRound, names: dict[str, str], verdict: VerdictView | None
    ) -> RoundView: ...

    def event_view(self, event: ChainEvent) -> EventView: ...

    def refresh_organization(self, view: OrganizationView) -> OrganizationView: ...


def _addresses_in(events: Iterable[ChainEvent]) -> set[str]:
    found: set[str] = set()
    for event in events:
        for value in event.args.values():
            if isinstance(value, str) and Web3.is_address(value):
                found.add(Web3.to_checksum_address(value))
    return found


def _round_is_final(view: RoundView) -> bool:
    return view.status == "finalized" and (
        view.decision is None or view.decision.state in FINAL_DOCUMENT_STATES
    )


class MarketIndex:
    """Everything the explorer shows about one market, kept up to date block by block."""

    def __init__(
        self,
        market: MarketClient,
        deploy_block: int,
        identity: MarketIdentity,
        views: Views,
        verifier: Verifier,
        store: Any,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.market = market
        self.deploy_block = deploy_block
        self.identity = identity
        self.views = views
        self.verifier = verifier
        self.store = store
        self.clock = clock
        self.follower = LedgerFollower(market, deploy_block)
        self.events: list[EventView] = []
        self.organizations: dict[str, OrganizationView] = {}  # registration order
        self._addresses: list[str] = []
        self._final_rounds: dict[int, RoundView] = {}
        self._final_verdicts: dict[int, VerdictView] = {}
        self._latest_verdicts: dict[int, VerdictView] = {}
        self._anchor: tuple[int, str | None] | None = None
        self._replay_due = True
        self._replayed_at = -REPLAY_RETRY_S
        self.stats = {"events_read": 0, "organization_reads": 0, "round_reads": 0, "replays": 0}

    # ------------------------------------------------------------------ continuity

    def continuous(self, head: int) -> bool:
        """Does the chain still hold the block this index has read through?"""
        if self._anchor is None:
            return True
        number, expected = self._anchor
        return head >= number and block_hash(self.market, number) == expected

    # ------------------------------------------------------------------ refresh

    def refresh(self) -> tuple[Ledger, int]:
        """Fold the new blocks; returns the ledger and the block it is read through."""
        before = len(self.follower.events)
        ledger, head = self.follower.sync()
        new_events = self.follower.events[before:]
        self._anchor = (head, block_hash(self.market, head))
        self.stats["events_read"] += len(new_events)
        self.events += [self.views.event_view(event) for event in new_events]
        if new_events:
            self._replay_due = True
        self._refresh_organizations(ledger, _addresses_in(new_events))
        return ledger, head

    def _refresh_organizations(self, ledger: Ledger, touched: set[str]) -> None:
        functions = self.market.contract.functions
        count = int(self.market.call(functions.organizationCount()))
        while len(self._addresses) < count:
            page = self.market.call(functions.organizationsPage(len(self._addresses), 500))
            if not page:
                break
            self._addresses += [Web3.to_checksum_address(address) for address in page]
        for address in self._addresses:
            view = self.organizations.get(address)
            if view is None or address in touched:
                self.stats["organization_reads"] += 1
                self.organizations[address] = self.views.organization_view(self.market, address, ledger)
            elif view.profile is not None and view.profile.state not in FINAL_DOCUMENT_STATES:
                self.organizations[address] = self.views.refresh_organization(view)

    def rounds(self, ledger: Ledger, names: dict[str, str]) -> list[RoundView]:
        """Every round, oldest first, each with its verdict; finalized rounds come from the cache."""
        verdicts = self._verdicts(ledger)
        views = []
        for round_id in sorted(ledger.rounds):
            cached = self._final_rounds.get(round_id)
            if cached is None:
                self.stats["round_reads"] += 1
                cached = self.views.round_view(self.market, ledger.rounds[round_id], names, None)
                if _round_is_final(cached):
                    self._final_rounds[round_id] = cached
            verdict = verdicts.get(round_id) or VerdictView(
                round_id, VERDICT_PENDING, None, "the replay gave no verdict"
            )
            views.append(with_verdict(cached, verdict))
        return views

    def _verdicts(self, ledger: Ledger) -> dict[int, VerdictView]:
        """Final verdicts from the cache; the replay runs only for rounds without one, and only when
        new events arrived or a retry is due."""
        missing = [round_id for round_id in sorted(ledger.rounds) if round_id not in self._final_verdicts]
        retry = self.clock() - self._replayed_at >= REPLAY_RETRY_S
        if missing and (self._replay_due or retry):
            self.stats["replays"] += 1
            self._latest_verdicts = run_verifier(
                self.verifier, self.market, self.store, self.follower.events, sorted(ledger.rounds)
            )
            self._replay_due = False
            self._replayed_at = self.clock()
            for round_id, verdict in self._latest_verdicts.items():
                record = ledger.rounds.get(round_id)
                if record is not None and record.finalized and verdict.verdict in FINAL_VERDICTS:
                    self._final_verdicts[round_id] = verdict
        return {**self._latest_verdicts, **self._final_verdicts}
