"""Which chain a follower reads, and whether that chain changed under it (a reset or a reorg).

A local development chain can be restarted fresh and the market redeployed at the *same* address
(same deployer, same nonce), so neither the chain id nor the address tells the two apart. The hash
of the deployment block does: `ChainKey` is (chain id, market address, deployment block hash), and
every piece of local state that depends on the chain (the runtime's `state.json`, a follower's
folded ledger, the matchmaker's replayed policy state) is kept under it.

`ResetGuard` remembers the hash of the block a follower has read through. At every sync it checks
that the head has not fallen below that block and that the block still has the same hash; if
either fails (a restarted chain, a reorg, a redeployment), the follower starts clean from the
deployment block and says so once in the log.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.client import MarketClient, rpc_errors
from chain.errors import ChainError
from chain.events import ChainEvent

log = logging.getLogger("knexa.market")


@dataclass(frozen=True)
class ChainKey:
    """The identity of one deployment on one chain."""

    chain_id: int
    market: str
    deploy_block_hash: str  # 0x-prefixed hex; empty when the deployment block does not exist

    def to_json(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "market": self.market, "deploy_block_hash": self.deploy_block_hash}

    @classmethod
    def from_json(cls, value: Any) -> ChainKey | None:
        if not isinstance(value, dict):
            return None
        try:
            return cls(int(value["chain_id"]), str(value["market"]), str(value["deploy_block_hash"]))
        except (KeyError, TypeError, ValueError):
            return None


def block_hash(market: MarketClient, number: int) -> str:
    """The hash of block `number` ("" when the chain has no such block)."""
    if number < 0:
        return ""
    with rpc_errors():
        block = market.w3.eth.get_block(number)
    value = block.get("hash")
    return "" if value is None else "0x" + bytes(value).hex()


def chain_key(market: MarketClient, deploy_block: int) -> ChainKey:
    """The key of the market `market` talks to, deployed in block `deploy_block`."""
    return ChainKey(int(market.chain_id), str(market.address), _safe_hash(market, deploy_block))


class ResetGuard:
    """Detects that the chain under a follower changed since it last read (see the module docstring)."""

    def __init__(self, market: MarketClient) -> None:
        self.market = market
        self._block = -1
        self._hash = ""
        self.resets = 0

    def remember(self, block: int, known_hash: str | None = None) -> str:
        """The follower has read through `block` (inclusive); returns that block's hash."""
        if block >= 0 and block != self._block:
            self._block = block
            self._hash = known_hash if known_hash is not None else _safe_hash(self.market, block)
        return self._hash

    def changed(self, head: int) -> str | None:
        """Why the chain is not the one read so far (None when it is)."""
        if self._block < 0:
            return None
        if head < self._block:
            return f"the head (block {head}) fell below the block read through ({self._block})"
        now = _safe_hash(self.market, self._block)
        if now != self._hash:
            return f"block {self._block} changed hash ({self._hash[:12]}... -> {now[:12] or 'none'}...)"
        return None

    def reset(self, reason: str) -> None:
        self.resets += 1
        self._block, self._hash = -1, ""
        log.warning("chain reset or reorg detected (%s): starting clean from the deployment block", reason)


def _safe_hash(market: MarketClient, number: int) -> str:
    try:
        return block_hash(market, number)
    except ChainError:
        raise
    except Exception:  # BlockNotFound: the block is gone
        return ""


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, dict):
        return {str(key): _encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return bytes.fromhex(value["$bytes"])
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


class EventCache:
    """The events a follower has read, on disk, so that a restarted process resumes incrementally.

    One JSON line per event after a header line holding the `ChainKey`; a line `{"through": N}`
    after each batch marks the block read through. The cache is used only when its key is the
    chain's and the block it was read through still has the hash it had (no reset, no reorg);
    otherwise it is discarded and the follower starts from the deployment block.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, key: ChainKey) -> tuple[list[ChainEvent], int, str] | None:
        """Cached (events, block read through, its hash), or None if there is no usable cache."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
            header = json.loads(lines[0]) if lines else None
            if header is None or ChainKey.from_json(header.get("chain")) != key:
                return None
            events: list[ChainEvent] = []
            pending: list[ChainEvent] = []
            through, through_hash = -1, ""
            for line in lines[1:]:
                entry = json.loads(line)
                if "through" in entry:
                    events += pending
                    pending = []
                    through, through_hash = int(entry["through"]), str(entry["hash"])
                else:
                    pending.append(
                        ChainEvent(
                            name=str(entry["name"]),
                            args=_decode(entry["args"]),
                            block_number=int(entry["block"]),
                            transaction_hash=str(entry["tx"]),
                            log_index=int(entry["log"]),
                        )
                    )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # a torn or foreign file: re-read from the chain
        return (events, through, through_hash) if through >= 0 else None

    def start(self, key: ChainKey) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"chain": key.to_json()}) + "\n", encoding="utf-8")
        os.replace(temporary, self.path)

    def append(self, events: list[ChainEvent], through: int, through_hash: str) -> None:
        lines = [
            json.dumps(
                {
                    "name": event.name,
                    "args": _encode(event.args),
                    "block": event.block_number,
                    "tx": event.transaction_hash,
                    "log": event.log_index,
                }
            )
            for event in events
        ]
        lines.append(json.dumps({"through": through, "hash": through_hash}))
        with self.path.open("a", encoding="utf-8") as file:
            file.write("\n".join(lines) + "\n")
