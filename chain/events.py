"""Read and decode the market's events, paging through block ranges.

Public RPC endpoints cap `eth_getLogs` ranges, so every read walks `[from_block, to_block]` in pages
of `page_size` blocks. Events come back in chain order (block, then log index).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.base_contract import BaseContractEvent

from chain.client import rpc_errors

DEFAULT_PAGE_SIZE = 5_000


@dataclass(frozen=True)
class ChainEvent:
    """One decoded log of the market."""

    name: str
    args: dict[str, Any]
    block_number: int
    transaction_hash: str
    log_index: int

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.name,
            "args": {key: _jsonable(value) for key, value in self.args.items()},
            "block": self.block_number,
            "tx": self.transaction_hash,
            "logIndex": self.log_index,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


def _plain(value: Any) -> Any:
    """AttributeDict/HexBytes -> dict/bytes, recursively."""
    if isinstance(value, HexBytes):
        return bytes(value)
    if isinstance(value, dict) or hasattr(value, "items"):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


class EventReader:
    """Decodes every event the contract's ABI declares (OpenZeppelin's role events included)."""

    def __init__(self, w3: Web3, contract: Contract, page_size: int = DEFAULT_PAGE_SIZE) -> None:
        if page_size < 1:
            raise ValueError("page_size must be positive")
        self.w3 = w3
        self.contract = contract
        self.page_size = page_size
        self._by_topic: dict[bytes, BaseContractEvent] = {}
        for entry in contract.abi:
            if entry.get("type") == "event":
                event_entry: dict[str, Any] = dict(entry)
                name = str(event_entry["name"])
                signature = f"{name}({','.join(_canonical(item) for item in event_entry['inputs'])})"
                self._by_topic[bytes(Web3.keccak(text=signature))] = contract.events[name]()

    @property
    def event_names(self) -> set[str]:
        return {event.event_name for event in self._by_topic.values()}

    def pages(self, from_block: int, to_block: int) -> Iterator[tuple[int, int]]:
        start = from_block
        while start <= to_block:
            end = min(start + self.page_size - 1, to_block)
            yield start, end
            start = end + 1

    def read(
        self, from_block: int = 0, to_block: int | None = None, names: Iterable[str] | None = None
    ) -> list[ChainEvent]:
        """All events in `[from_block, to_block]` (latest when None), optionally only `names`."""
        wanted = set(names) if names is not None else None
        if wanted is not None and not wanted <= self.event_names:
            raise ValueError(f"unknown event names: {sorted(wanted - self.event_names)}")
        with rpc_errors():
            last = self.w3.eth.block_number if to_block is None else to_block
        events: list[ChainEvent] = []
        for start, end in self.pages(from_block, last):
            with rpc_errors():
                logs = self.w3.eth.get_logs(
                    {"address": self.contract.address, "fromBlock": start, "toBlock": end}
                )
            for log in logs:
                event = self._by_topic.get(bytes(log["topics"][0])) if log["topics"] else None
                if event is None:
                    continue
                if wanted is not None and event.event_name not in wanted:
                    continue
                decoded = event.process_log(log)
                events.append(
                    ChainEvent(
                        name=event.event_name,
                        args=_plain(decoded["args"]),
                        block_number=int(log["blockNumber"]),
                        transaction_hash=HexBytes(log["transactionHash"]).to_0x_hex(),
                        log_index=int(log["logIndex"]),
                    )
                )
        events.sort(key=lambda item: (item.block_number, item.log_index))
        return events


def _canonical(entry: Any) -> str:
    abi_type: str = entry["type"]
    if abi_type.startswith("tuple"):
        inner = ",".join(_canonical(component) for component in entry["components"])
        return f"({inner}){abi_type[len('tuple') :]}"
    return abi_type
