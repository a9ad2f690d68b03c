"""Reads on a pruning Anvil: a read whose block's state was dropped is retried at `latest`, and
what cannot be read becomes a typed `ChainError`, never a raw web3 exception."""

from __future__ import annotations

from typing import Any

import pytest
from web3.contract.contract import ContractFunction
from web3.exceptions import Web3RPCError

from chain.client import PRUNED_STATE_ATTEMPTS, is_pruned_state
from chain.devchain import DevChain
from chain.errors import ChainError, RpcError, StateUnavailableError


class _PinnedFirst:
    """A real view function whose first `pinned` calls are made at a block whose state is gone."""

    def __init__(self, function: ContractFunction, block: int, pinned: int) -> None:
        self.function = function
        self.block = block
        self.pinned = pinned
        self.calls = 0

    def call(self, block_identifier: Any = "latest") -> Any:
        self.calls += 1
        if self.calls <= self.pinned:
            return self.function.call(block_identifier=self.block)
        return self.function.call(block_identifier=block_identifier)


def test_anvil_drops_the_state_of_an_old_block(dev_chain: DevChain) -> None:
    market = dev_chain.client()
    dev_chain.mine(2)
    with pytest.raises(Web3RPCError) as raised:
        market.contract.functions.nextRoundId().call(block_identifier=market.block_number() - 1)
    assert is_pruned_state(raised.value)


def test_a_read_of_pruned_state_is_retried_at_latest(dev_chain: DevChain) -> None:
    market = dev_chain.client()
    dev_chain.mine(2)
    pinned = _PinnedFirst(market.contract.functions.nextRoundId(), market.block_number() - 1, pinned=2)
    assert market.call(pinned) == 1  # type: ignore[arg-type]
    assert pinned.calls == 3


def test_state_that_stays_unavailable_is_a_typed_chain_error(dev_chain: DevChain) -> None:
    market = dev_chain.client()
    dev_chain.mine(2)
    pinned = _PinnedFirst(market.contract.functions.nextRoundId(), market.block_number() - 1, pinned=99)
    with pytest.raises(StateUnavailableError) as raised:
        market.call(pinned)  # type: ignore[arg-type]
    assert isinstance(raised.value, ChainError)
    assert pinned.calls == PRUNED_STATE_ATTEMPTS


def test_a_read_beyond_the_head_is_a_typed_chain_error(dev_chain: DevChain) -> None:
    market = dev_chain.client()
    future = _PinnedFirst(market.contract.functions.nextRoundId(), market.block_number() + 1000, pinned=99)
    with pytest.raises(ChainError) as raised:
        market.call(future)  # type: ignore[arg-type]
    assert isinstance(raised.value, RpcError)


class _PrunedEstimateFirst:
    """A real transaction whose first `pinned` estimates meet a node that dropped their block's state."""

    def __init__(self, function: ContractFunction, block: int, pinned: int) -> None:
        self.function = function
        self.block = block
        self.pinned = pinned
        self.calls = 0

    def build_transaction(self, params: Any) -> Any:
        self.calls += 1
        if self.calls <= self.pinned:  # the node's own BlockOutOfRangeError, as a racing block gives it
            self.function.call({"from": params["from"]}, block_identifier=self.block)
        return self.function.build_transaction(params)


def test_a_transaction_whose_estimate_meets_pruned_state_is_estimated_again(dev_chain: DevChain) -> None:
    admin = dev_chain.admin()
    dev_chain.mine(2)
    names = [item["name"] for item in admin._inputs("setParameters")[0]["components"]]
    unchanged = admin.contract.functions.setParameters(admin.parameters().as_abi(names))
    old = admin.block_number() - 1
    flaky = _PrunedEstimateFirst(unchanged, old, pinned=2)
    mined = admin.transact(flaky)  # type: ignore[arg-type]
    assert mined.receipt["status"] == 1
    assert flaky.calls == 3
    hopeless = _PrunedEstimateFirst(unchanged, old, pinned=99)
    with pytest.raises(StateUnavailableError):
        admin.transact(hopeless)  # type: ignore[arg-type]
