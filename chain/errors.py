"""Typed errors for everything that can go wrong on the chain side.

web3.py reports a custom Solidity error as `ContractCustomError` carrying the raw 4-byte selector
and ABI-encoded arguments. `ErrorDecoder.decode` turns that into a `ContractReverted` whose `name` and
`arguments` are the error's Solidity name and decoded arguments, matched against the contract ABI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.crypto import keccak

# Errors that mean "the caller may not do this" rather than "the state does not allow it".
_ACCESS_ERRORS = frozenset(
    {"AccessControlUnauthorizedAccount", "NotAssignedTeacher", "NotAssignedStudent", "UnknownOrganization"}
)


class ChainError(Exception):
    """Base of every error raised by the chain package."""


class NodeUnavailableError(ChainError):
    """The JSON-RPC endpoint does not answer."""


class DeploymentError(ChainError):
    """Deploying the contracts failed, or a manifest does not match the chain."""


class ContractReverted(ChainError):  # noqa: N818 - reads as an event: "the contract reverted"
    """A call or transaction reverted with a decoded custom error (or a reason string / panic)."""

    def __init__(self, name: str, arguments: Mapping[str, Any], raw: str = "") -> None:
        self.name = name
        self.arguments = dict(arguments)
        self.raw = raw
        rendered = ", ".join(f"{key}={_render(value)}" for key, value in self.arguments.items())
        super().__init__(f"{name}({rendered})")


class AccessDenied(ContractReverted):
    """The caller lacks the role or the assignment the function requires."""


class TransactionFailed(ChainError):  # noqa: N818
    """A mined transaction has status 0 without a decodable reason."""


def _render(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


def _canonical_type(entry: Mapping[str, Any]) -> str:
    """The canonical ABI type of one input, expanding tuples (`tuple[]` -> `(uint256,address)[]`)."""
    abi_type: str = entry["type"]
    if abi_type.startswith("tuple"):
        inner = ",".join(_canonical_type(component) for component in entry["components"])
        return f"({inner}){abi_type[len('tuple') :]}"
    return abi_type


class ErrorDecoder:
    """Maps 4-byte selectors of an ABI's custom errors to their names and argument decoders."""

    def __init__(self, abi: Sequence[Mapping[str, Any]]) -> None:
        self._by_selector: dict[bytes, tuple[str, list[str], list[str]]] = {}
        for entry in abi:
            if entry.get("type") != "error":
                continue
            types = [_canonical_type(item) for item in entry["inputs"]]
            names = [item["name"] or f"arg{index}" for index, item in enumerate(entry["inputs"])]
            selector = keccak(text=f"{entry['name']}({','.join(types)})")[:4]
            self._by_selector[selector] = (entry["name"], types, names)

    @property
    def error_names(self) -> set[str]:
        return {name for name, _, _ in self._by_selector.values()}

    def decode(self, data: str | bytes) -> ContractReverted:
        """Decode revert data (hex string or bytes) into a typed error."""
        raw = data if isinstance(data, bytes) else bytes.fromhex(data.removeprefix("0x"))
        selector, payload = raw[:4], raw[4:]
        if selector in self._by_selector:
            name, types, names = self._by_selector[selector]
            values = abi_decode(types, payload)
            error_class = AccessDenied if name in _ACCESS_ERRORS else ContractReverted
            return error_class(name, dict(zip(names, values, strict=True)), "0x" + raw.hex())
        if selector == keccak(text="Error(string)")[:4]:
            (message,) = abi_decode(["string"], payload)
            return ContractReverted("Error", {"message": message}, "0x" + raw.hex())
        if selector == keccak(text="Panic(uint256)")[:4]:
            (code,) = abi_decode(["uint256"], payload)
            return ContractReverted("Panic", {"code": code}, "0x" + raw.hex())
        return ContractReverted("UnknownError", {"data": raw}, "0x" + raw.hex())
