"""`LedgerFollower` and `read_constants` on a real Anvil: each event read once, folded once."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
from coincurve import PrivateKey
from web3.types import RPCEndpoint

from chain.client import MarketClient
from chain.devchain import DevChain
from chain.errors import ChainError
from chain.events import ChainEvent
from chain.units import ether
from market.errors import ParametersError
from market.follower import ChainKey, EventCache, block_hash, chain_key
from market.ledger import Ledger, LedgerFollower
from market.parameters import MarketConstants, read_constants


def _key(index: int) -> bytes:
    return bytes(PrivateKey(bytes([index + 1]) * 32).public_key.format(compressed=True))


def test_the_contract_constants(dev_chain: DevChain) -> None:
    assert read_constants(dev_chain.client()) == MarketConstants(
        wad=10**18, initial_reputation=0
    )  # v2: trust is earned


def test_constants_of_an_address_without_the_market_are_a_typed_error(dev_chain: DevChain) -> None:
    nowhere = MarketClient(dev_chain.w3, "0x000000000000000000000000000000000000bEEF")
    with pytest.raises(ParametersError) as raised:
        read_constants(nowhere)
    assert str(raised.value) == f"cannot read the market's constants: {raised.value.__cause__}"
    assert isinstance(raised.value.__cause__, ChainError)


def test_the_follower_reads_each_block_once(dev_chain: DevChain) -> None:
    market = dev_chain.client()
    deploy_block = dev_chain.deployment.deploy_block
    follower = LedgerFollower(market, deploy_block)
    assert follower.read_through == deploy_block - 1
    assert follower.events == []

    ledger, head = follower.sync()
    assert head == market.block_number() == follower.read_through
    assert ledger.last_block == head
    assert [event.name for event in follower.events].count("ParametersUpdated") == 1  # at the deploy block
    assert ledger.parameters["minStake"] == dev_chain.parameters.min_stake
    assert ledger.organizations == {}

    dev_chain.organization(0).register("a", b"p", _key(0), ether(2))
    second, head2 = follower.sync()
    assert second is ledger  # updated in place
    assert head2 == head + 1 == follower.read_through
    assert [event.name for event in follower.events][-1] == "OrganizationRegistered"
    (address,) = ledger.organizations
    assert ledger.organizations[address].reputation == read_constants(market).initial_reputation
    assert ledger.organizations[address].stake == ether(2)

    count = len(follower.events)
    dev_chain.mine(3)
    third, head3 = follower.sync()
    assert (head3, third.last_block, follower.read_through) == (head2 + 3, head2 + 3, head2 + 3)
    assert len(follower.events) == count  # empty blocks add nothing
    fourth, head4 = follower.sync()  # nothing new at all
    assert fourth is ledger
    assert (head4, len(follower.events)) == (head3, count)

    everything = dev_chain.events().read(deploy_block, head4)
    assert follower.events == everything  # no event read twice, none missed
    refolded = Ledger.from_events(everything, initial_reputation=read_constants(market).initial_reputation)
    assert refolded.organizations == ledger.organizations
    assert refolded.parameters == ledger.parameters


def test_a_follower_from_a_later_block_skips_the_earlier_ones(dev_chain: DevChain) -> None:
    market = dev_chain.client()
    dev_chain.organization(0).register("a", b"p", _key(0), ether(2))
    start = market.block_number() + 1
    dev_chain.mine(1)
    follower = LedgerFollower(market, start)
    ledger, head = follower.sync()
    assert follower.events == []
    assert ledger.organizations == {}
    assert head == start


class _Lagging(MarketClient):
    """A real client whose idea of the head is `lag` blocks behind the node (a block mined between
    reading the head and reading the logs)."""

    lag = 1

    def block_number(self) -> int:
        return super().block_number() - self.lag


def test_the_follower_reads_no_further_than_the_head_it_saw(dev_chain: DevChain) -> None:
    market = _Lagging(dev_chain.w3, dev_chain.deployment.market_address)
    follower = LedgerFollower(market, dev_chain.deployment.deploy_block)
    dev_chain.organization(0).register("a", b"p", _key(0), ether(2))
    ledger, head = follower.sync()
    assert head == dev_chain.client().block_number() - 1
    assert ledger.organizations == {}  # the registration is in the block after the head it saw
    market.lag = 0
    ledger, _ = follower.sync()
    assert [event.name for event in follower.events].count("OrganizationRegistered") == 1
    assert len(ledger.organizations) == 1


def _snapshot(chain: DevChain) -> str:
    return str(chain.w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"])


def _revert(chain: DevChain, snapshot: str) -> None:
    assert chain.w3.provider.make_request(RPCEndpoint("evm_revert"), [snapshot])["result"] is True


class _Counting(LedgerFollower):
    """A follower that records the block ranges it reads logs for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads: list[tuple[int, int | None]] = []
        original = self._reader.read

        def read(from_block: int = 0, to_block: int | None = None, names: Any = None) -> list[ChainEvent]:
            self.reads.append((from_block, to_block))
            return original(from_block, to_block)

        self._reader.read = read  # type: ignore[method-assign]


def test_a_cached_follower_resumes_where_it_was(dev_chain: DevChain, tmp_path: Path) -> None:
    market = dev_chain.client()
    deploy = dev_chain.deployment.deploy_block
    cache = EventCache(tmp_path / "events.jsonl")
    first = LedgerFollower(market, deploy, cache)
    dev_chain.organization(0).register("a", b"p", _key(0), ether(2))
    ledger, head = first.sync()
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert ChainKey.from_json(json.loads(lines[0])["chain"]) == chain_key(market, deploy)
    assert json.loads(lines[-1]) == {"through": head, "hash": block_hash(market, head)}
    assert len(lines) == 2 + len(first.events)

    resumed = _Counting(market, deploy, EventCache(tmp_path / "events.jsonl"))
    assert resumed.read_through == head  # before reading anything
    assert resumed.events == first.events
    again, _ = resumed.sync()
    assert resumed.reads == []  # nothing new: nothing read
    assert again.organizations == ledger.organizations
    assert again.parameters == ledger.parameters
    assert resumed.resets == 0
    dev_chain.organization(1).register("b", b"q", _key(1), ether(2))
    more, head2 = resumed.sync()
    assert resumed.reads == [(head + 1, head2)]  # only the new block
    assert len(more.organizations) == 2
    assert json.loads((tmp_path / "events.jsonl").read_text().splitlines()[-1])["through"] == head2


def test_a_reorg_under_a_follower_is_detected_once_and_read_again(
    dev_chain: DevChain, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Anvil's snapshot/revert replaces the blocks after the deployment with other ones."""
    market = dev_chain.client()
    deploy = dev_chain.deployment.deploy_block
    snapshot = _snapshot(dev_chain)
    live = LedgerFollower(market, deploy)
    cached = LedgerFollower(market, deploy, EventCache(tmp_path / "events.jsonl"))
    dev_chain.organization(0).register("a", b"p", _key(0), ether(2))
    dev_chain.mine(2)
    for follower in (live, cached):
        assert len(follower.sync()[0].organizations) == 1
    _revert(dev_chain, snapshot)
    dev_chain.organization(1).register("b", b"q", _key(1), ether(2))  # another history
    dev_chain.mine(3)  # the head is past the old read-through point again
    account = dev_chain.organization(1).account
    assert account is not None
    b = account.address
    shutil.copy(tmp_path / "events.jsonl", tmp_path / "old.jsonl")  # a process restarted after the reorg
    with caplog.at_level(logging.WARNING, logger="knexa.market"):
        from_old = LedgerFollower(market, deploy, EventCache(tmp_path / "old.jsonl"))
        assert len(from_old.events) > 0  # the old history was loaded (same deployment block) ...
        assert list(from_old.sync()[0].organizations) == [b]  # ... and found replaced
        assert from_old.resets == 1
        for follower in (live, cached):
            ledger, _ = follower.sync()
            assert list(ledger.organizations) == [b]
            assert follower.resets == 1
            assert follower.events == dev_chain.events().read(deploy, follower.read_through)
        restarted = LedgerFollower(market, deploy, EventCache(tmp_path / "events.jsonl"))
        assert restarted.read_through == cached.read_through  # resumed from the restarted cache
        assert list(restarted.sync()[0].organizations) == [b]
        assert restarted.resets == 0  # the cache was started again under the new history
        for follower in (live, cached):
            follower.sync()
            assert follower.resets == 1  # said once
    messages = [r.getMessage() for r in caplog.records if "reset or reorg detected" in r.getMessage()]
    assert len(messages) == 3
    assert all("changed hash" in message for message in messages)
