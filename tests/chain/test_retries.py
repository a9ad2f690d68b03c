"""Transient RPC failures are retried without duplicate submissions."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from chain.devchain import DevChain
from chain.errors import NodeUnavailableError
from chain.units import ether
from tests.chain.helpers import account_of, cid_of, public_key


def test_a_send_that_fails_in_transit_is_retried_once_and_mined_once(
    dev_chain: DevChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = dev_chain.organization(0)
    address = account_of(org).address
    nonce = dev_chain.w3.eth.get_transaction_count(address)
    real_send = dev_chain.w3.eth.send_raw_transaction
    calls: list[int] = []

    def flaky_send(raw: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            real_send(raw)  # the node got it, but the answer was lost on the way back
            raise requests.ConnectionError("connection reset by peer")
        return real_send(raw)

    monkeypatch.setattr(dev_chain.w3.eth, "send_raw_transaction", flaky_send)
    org.register("flaky", cid_of("p"), public_key(3), ether(1))
    assert len(calls) == 2
    assert dev_chain.w3.eth.get_transaction_count(address) == nonce + 1  # one transaction, not two
    assert dev_chain.client().organization(address).name == "flaky"


def test_a_node_that_stays_down_gives_a_clear_error(
    dev_chain: DevChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = dev_chain.organization(0)

    def down(*args: Any, **kwargs: Any) -> Any:
        raise requests.ConnectionError("connection refused")

    monkeypatch.setattr(dev_chain.w3.eth, "get_transaction_count", down)
    monkeypatch.setattr("chain.client.RPC_BACKOFF_S", 0.0)
    with pytest.raises(NodeUnavailableError, match="connection refused"):
        org.register("down", cid_of("p"), public_key(3), ether(1))
