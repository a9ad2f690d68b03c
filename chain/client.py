"""Typed Python client of the KnexaMarket contract over web3.py.

Every transaction is signed locally (works on Anvil and on any EVM chain alike), estimated first so
that a revert surfaces as a decoded `ContractReverted` *before* anything is sent, and waited for.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Any, TypeVar

import requests
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ProviderConnectionError,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import TxParams, TxReceipt, Wei

from chain.compiler import Artifact, load_artifact
from chain.errors import ChainError, ContractReverted, ErrorDecoder, NodeUnavailableError, TransactionFailed
from chain.units import ether

RECEIPT_TIMEOUT_S = 120.0
RPC_ATTEMPTS = 4
RPC_BACKOFF_S = 0.25
T = TypeVar("T")
RECEIPT_POLL_S = 0.02  # automining nodes answer within milliseconds; public chains just poll more


def connect(rpc_url: str, timeout_s: float = 30.0) -> Web3:
    """A Web3 over HTTP JSON-RPC; raises `NodeUnavailableError` if nothing answers."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))
    with rpc_errors(rpc_url):
        w3.eth.chain_id  # noqa: B018 - a cheap call that proves the node answers
    return w3


def with_retries(action: Callable[[], T], attempts: int | None = None, backoff_s: float | None = None) -> T:
    """Run `action`, retrying transport failures with exponential backoff (then `NodeUnavailableError`).

    Only transport errors are retried; a node's answer (a revert, a rejected transaction) is not.
    Sending is safe to retry because the same signed transaction (same nonce, same hash) is resent.
    """
    tries = RPC_ATTEMPTS if attempts is None else attempts
    pause = RPC_BACKOFF_S if backoff_s is None else backoff_s
    for attempt in range(tries):
        try:
            with rpc_errors():
                return action()
        except NodeUnavailableError:
            if attempt == tries - 1:
                raise
            time.sleep(pause * 2**attempt)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def rpc_errors(where: str = "the JSON-RPC node") -> Iterator[None]:
    """Turn transport failures into `NodeUnavailableError`."""
    try:
        yield
    except (requests.ConnectionError, requests.Timeout, ProviderConnectionError) as error:
        raise NodeUnavailableError(f"cannot reach {where}: {error}") from error


class OrganizationStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    EXITING = 2
    EXITED = 3


class RoundStatus(IntEnum):
    NONE = 0
    OPEN = 1
    FINALIZED = 2


class SlashReason(IntEnum):
    NO_BUNDLE = 0
    NO_REPORT = 1


@dataclass(frozen=True)
class MarketParameters:
    """Mirror of `OrganizationRegistry.MarketParameters` (wei, blocks, basis points)."""

    min_stake: int
    exchange_fee: int
    exit_cooldown_blocks: int
    min_round_blocks: int
    max_round_blocks: int
    slash_bps: int
    reputation_weight_bps: int
    max_pairs_per_round: int

    def as_tuple(self) -> tuple[int, ...]:
        return tuple(asdict(self).values())


DEFAULT_PARAMETERS = MarketParameters(
    min_stake=ether(1),
    exchange_fee=ether("0.01"),
    exit_cooldown_blocks=10,
    min_round_blocks=2,
    max_round_blocks=100_000,
    slash_bps=1_000,
    reputation_weight_bps=2_000,
    max_pairs_per_round=128,
)


@dataclass(frozen=True)
class Organization:
    address: str
    status: OrganizationStatus
    registered_at_block: int
    exit_available_at_block: int
    stake: int
    reputation: int
    credits: int
    profile_digest: bytes
    name: str
    encryption_public_key: bytes


@dataclass(frozen=True)
class Round:
    round_id: int
    status: RoundStatus
    opened_at_block: int
    deadline_block: int
    pair_count: int
    decision_digest: bytes
    policy_digest: bytes
    exchange_fee: int


@dataclass(frozen=True)
class PairState:
    index: int
    teacher: str
    student: str
    bundle_published: bool
    gain_reported: bool
    gain: int
    bundle_digest: bytes
    adapter_digest: bytes


@dataclass(frozen=True)
class TxResult:
    """What a mined transaction left behind."""

    transaction_hash: str
    block_number: int
    gas_used: int
    receipt: TxReceipt


def _snake(name: str) -> str:
    """`registeredAtBlock` -> `registered_at_block` (ABI component names to Python field names)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def cid_digest(cid: bytes) -> bytes:
    """The digest the contract stores for a CID: keccak256 of its binary form."""
    return bytes(Web3.keccak(cid))


class MarketClient:
    """One account's view of a deployed KnexaMarket. Without an account it can only read."""

    def __init__(
        self,
        w3: Web3,
        address: str,
        account: LocalAccount | None = None,
        artifact: Artifact | None = None,
    ) -> None:
        self.w3 = w3
        self.artifact = artifact or load_artifact("KnexaMarket")
        self.address = Web3.to_checksum_address(address)
        self.contract: Contract = w3.eth.contract(address=self.address, abi=self.artifact.abi)
        self.account = account
        self.errors = ErrorDecoder(self.artifact.abi)
        self._struct_fields: dict[str, tuple[str, ...]] = {}
        with rpc_errors():
            self.chain_id = w3.eth.chain_id

    def with_account(self, account: LocalAccount) -> MarketClient:
        """The same market, acting as `account`."""
        return MarketClient(self.w3, self.address, account, self.artifact)

    # ------------------------------------------------------------------ plumbing

    def _require_account(self) -> LocalAccount:
        if self.account is None:
            raise ValueError("this client has no account: it can only read")
        return self.account

    def _decode(self, error: ContractCustomError | ContractLogicError) -> ContractReverted:
        data = error.data
        if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
            return self.errors.decode(data)
        return ContractReverted("Error", {"message": str(error.message or error)})

    def call(self, function: ContractFunction) -> Any:
        """Run a view function, with reverts decoded."""
        try:
            with rpc_errors():
                return function.call()
        except (ContractCustomError, ContractLogicError) as error:
            raise self._decode(error) from None

    def transact(self, function: ContractFunction, value: int = 0) -> TxResult:
        """Estimate (surfacing reverts as typed errors), sign, send and wait for `function`."""
        account = self._require_account()

        def build() -> TxParams:
            params: TxParams = {
                "from": account.address,
                "value": Wei(value),
                "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
                "chainId": self.chain_id,
            }
            return function.build_transaction(params)

        try:
            transaction = with_retries(build)
        except (ContractCustomError, ContractLogicError) as error:
            raise self._decode(error) from None
        signed = account.sign_transaction(dict(transaction))  # type: ignore[arg-type]
        transaction_hash = HexBytes(signed.hash)

        def send() -> None:
            try:
                self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except Web3RPCError:
                # A retried send of the very same signed transaction ("already known", or "nonce too
                # low" once it is mined): fine if the node has our transaction, an error otherwise.
                try:
                    self.w3.eth.get_transaction(transaction_hash)
                except TransactionNotFound:
                    raise

        with_retries(send)
        receipt = with_retries(
            lambda: self.w3.eth.wait_for_transaction_receipt(
                transaction_hash, timeout=RECEIPT_TIMEOUT_S, poll_latency=RECEIPT_POLL_S
            )
        )
        if receipt["status"] != 1:
            raise self._explain_failure(function, account.address, value, receipt)
        return TxResult(
            transaction_hash=HexBytes(transaction_hash).to_0x_hex(),
            block_number=receipt["blockNumber"],
            gas_used=receipt["gasUsed"],
            receipt=receipt,
        )

    def _explain_failure(
        self, function: ContractFunction, sender: str, value: int, receipt: TxReceipt
    ) -> ChainError:
        """Why a transaction that passed estimation reverted once mined (e.g. its block was past a
        deadline): re-run it as a call on the state of the block it was mined in."""
        transaction_hash = HexBytes(receipt["transactionHash"]).to_0x_hex()
        try:
            with rpc_errors():
                params: TxParams = {"from": sender, "value": Wei(value)}
                function.call(params, block_identifier=receipt["blockNumber"])
        except (ContractCustomError, ContractLogicError) as error:
            return self._decode(error)
        except NodeUnavailableError as error:
            return error
        return TransactionFailed(f"transaction {transaction_hash} reverted on chain")

    # ------------------------------------------------------------------ organizations

    def register(self, name: str, profile_cid: bytes, encryption_public_key: bytes, stake: int) -> TxResult:
        """Register the client's account with `stake` wei."""
        return self.transact(
            self.contract.functions.register(name, profile_cid, encryption_public_key), value=stake
        )

    def update_profile(self, profile_cid: bytes) -> TxResult:
        return self.transact(self.contract.functions.updateProfile(profile_cid))

    def add_stake(self, amount: int) -> TxResult:
        return self.transact(self.contract.functions.addStake(), value=amount)

    def request_exit(self) -> TxResult:
        return self.transact(self.contract.functions.requestExit())

    def complete_exit(self) -> TxResult:
        return self.transact(self.contract.functions.completeExit())

    def withdraw(self) -> TxResult:
        return self.transact(self.contract.functions.withdraw())

    # ------------------------------------------------------------------ admin

    def set_parameters(self, parameters: MarketParameters) -> TxResult:
        return self.transact(self.contract.functions.setParameters(parameters.as_tuple()))

    def grant_matchmaker(self, address: str) -> TxResult:
        return self.transact(
            self.contract.functions.grantRole(self.matchmaker_role(), Web3.to_checksum_address(address))
        )

    # ------------------------------------------------------------------ rounds

    def open_round(
        self,
        round_id: int,
        decision_cid: bytes,
        policy_digest: bytes,
        pairs: Sequence[tuple[str, str]],
        deadline_block: int,
    ) -> TxResult:
        """Open round `round_id` with directed `pairs` of (teacher, student) addresses."""
        teachers = [Web3.to_checksum_address(teacher) for teacher, _ in pairs]
        students = [Web3.to_checksum_address(student) for _, student in pairs]
        return self.transact(
            self.contract.functions.openRound(
                round_id, decision_cid, policy_digest, teachers, students, deadline_block
            )
        )

    def publish_bundle(self, round_id: int, student: str, bundle_cid: bytes) -> TxResult:
        return self.transact(
            self.contract.functions.publishBundle(round_id, Web3.to_checksum_address(student), bundle_cid)
        )

    def report_gain(self, round_id: int, teacher: str, gain_wad: int, adapter_cid: bytes) -> TxResult:
        return self.transact(
            self.contract.functions.reportGain(
                round_id, Web3.to_checksum_address(teacher), gain_wad, adapter_cid
            )
        )

    def finalize_round(self, round_id: int) -> TxResult:
        return self.transact(self.contract.functions.finalizeRound(round_id))

    # ------------------------------------------------------------------ views

    def matchmaker_role(self) -> bytes:
        role: bytes = self.call(self.contract.functions.MATCHMAKER_ROLE())
        return role

    def has_role(self, role: bytes, address: str) -> bool:
        answer: bool = self.call(self.contract.functions.hasRole(role, Web3.to_checksum_address(address)))
        return answer

    def parameters(self) -> MarketParameters:
        return MarketParameters(**self._struct("parameters", self.call(self.contract.functions.parameters())))

    def _struct(self, function: str, values: Sequence[Any]) -> dict[str, Any]:
        """A returned struct as {snake_case field name: value}, matched by the ABI's component names."""
        names = self._struct_fields.get(function)
        if names is None:
            entry = next(
                e for e in self.artifact.abi if e.get("type") == "function" and e.get("name") == function
            )
            components = entry["outputs"][0]["components"]
            names = tuple(_snake(str(component["name"])) for component in components)
            self._struct_fields[function] = names
        if len(names) != len(values):
            raise ChainError(f"{function} returned {len(values)} fields, its ABI names {len(names)}")
        return dict(zip(names, values, strict=True))

    def organization(self, address: str) -> Organization:
        checksum = Web3.to_checksum_address(address)
        fields = self._struct("organization", self.call(self.contract.functions.organization(checksum)))
        return Organization(
            address=checksum,
            status=OrganizationStatus(fields["status"]),
            registered_at_block=fields["registered_at_block"],
            exit_available_at_block=fields["exit_available_at_block"],
            stake=fields["stake"],
            reputation=fields["reputation"],
            credits=fields["credits"],
            profile_digest=bytes(fields["profile_digest"]),
            name=fields["name"],
            encryption_public_key=bytes(fields["encryption_public_key"]),
        )

    def organization_addresses(self, page_size: int = 500) -> list[str]:
        """Every address that ever registered, in registration order."""
        total: int = self.call(self.contract.functions.organizationCount())
        addresses: list[str] = []
        for start in range(0, total, page_size):
            addresses += self.call(self.contract.functions.organizationsPage(start, page_size))
        return addresses

    def organizations(self) -> list[Organization]:
        return [self.organization(address) for address in self.organization_addresses()]

    def next_round_id(self) -> int:
        value: int = self.call(self.contract.functions.nextRoundId())
        return value

    def open_round_id(self) -> int:
        """The id of the open round, 0 when none is open."""
        value: int = self.call(self.contract.functions.openRoundId())
        return value

    def round(self, round_id: int) -> Round:
        fields = self._struct("getRound", self.call(self.contract.functions.getRound(round_id)))
        return Round(
            round_id=round_id,
            status=RoundStatus(fields["status"]),
            opened_at_block=fields["opened_at_block"],
            deadline_block=fields["deadline_block"],
            pair_count=fields["pair_count"],
            decision_digest=bytes(fields["decision_digest"]),
            policy_digest=bytes(fields["policy_digest"]),
            exchange_fee=fields["exchange_fee"],
        )

    def pairs(self, round_id: int) -> list[PairState]:
        return [
            PairState(
                index=index,
                teacher=fields["teacher"],
                bundle_published=fields["bundle_published"],
                gain_reported=fields["gain_reported"],
                student=fields["student"],
                gain=fields["gain"],
                bundle_digest=bytes(fields["bundle_digest"]),
                adapter_digest=bytes(fields["adapter_digest"]),
            )
            for index, fields in enumerate(
                self._struct("getPair", values)
                for values in self.call(self.contract.functions.getPairs(round_id))
            )
        ]

    def pending_withdrawal(self, address: str) -> int:
        value: int = self.call(self.contract.functions.pendingWithdrawal(Web3.to_checksum_address(address)))
        return value

    def escrowed_fees(self) -> int:
        value: int = self.call(self.contract.functions.escrowedFees())
        return value

    def contract_balance(self) -> int:
        with rpc_errors():
            return self.w3.eth.get_balance(self.address)

    def block_number(self) -> int:
        with rpc_errors():
            return self.w3.eth.block_number
