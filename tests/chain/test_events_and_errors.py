"""Event paging and custom-error decoding."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import keccak

from chain.compiler import load_artifact
from chain.devchain import DevChain
from chain.errors import AccessDenied, ContractReverted, ErrorDecoder
from chain.events import EventReader
from tests.chain.helpers import open_ring, register_three


def test_paged_reads_equal_one_read(dev_chain: DevChain) -> None:
    orgs = register_three(dev_chain)
    open_ring(dev_chain, orgs)
    start = dev_chain.deployment.deploy_block
    contract = dev_chain.client().contract
    whole = EventReader(dev_chain.w3, contract, page_size=10_000).read(start)
    paged = EventReader(dev_chain.w3, contract, page_size=1).read(start)
    assert whole == paged
    assert [event.name for event in whole].count("OrganizationRegistered") == 3
    assert [(e.block_number, e.log_index) for e in whole] == sorted(
        (e.block_number, e.log_index) for e in whole
    )
    only = EventReader(dev_chain.w3, contract, page_size=3).read(start, names=["RoundOpened"])
    assert [event.name for event in only] == ["RoundOpened"]
    assert only[0].to_json()["args"]["pairCount"] == 3


def test_unknown_event_name_is_rejected(dev_chain: DevChain) -> None:
    reader = dev_chain.events()
    with pytest.raises(ValueError, match="unknown event names"):
        reader.read(0, names=["NoSuchEvent"])


def test_decoder_names_every_custom_error() -> None:
    abi = load_artifact().abi
    decoder = ErrorDecoder(abi)
    assert {"StakeTooLow", "DeadlinePassed", "AccessControlUnauthorizedAccount"} <= decoder.error_names
    data = keccak(text="StakeTooLow(uint256,uint256)")[:4] + encode(["uint256", "uint256"], [5, 10])
    error = decoder.decode("0x" + data.hex())
    assert (error.name, error.arguments) == ("StakeTooLow", {"sent": 5, "required": 10})
    assert "StakeTooLow(sent=5, required=10)" in str(error)
    role_error = decoder.decode(
        keccak(text="AccessControlUnauthorizedAccount(address,bytes32)")[:4]
        + encode(["address", "bytes32"], ["0x" + "11" * 20, b"\x22" * 32])
    )
    assert isinstance(role_error, AccessDenied)


def test_decoder_handles_reason_strings_panics_and_garbage() -> None:
    decoder = ErrorDecoder(load_artifact().abi)
    reason = decoder.decode(keccak(text="Error(string)")[:4] + encode(["string"], ["nope"]))
    assert (reason.name, reason.arguments) == ("Error", {"message": "nope"})
    panic = decoder.decode(keccak(text="Panic(uint256)")[:4] + encode(["uint256"], [0x11]))
    assert (panic.name, panic.arguments) == ("Panic", {"code": 0x11})
    unknown = decoder.decode(b"\xde\xad\xbe\xef")
    assert isinstance(unknown, ContractReverted)
    assert unknown.name == "UnknownError"
