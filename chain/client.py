"""Typed Python client of the KnexaMarket contract over web3.py.

Every transaction is signed locally (works on Anvil and on any EVM chain alike), estimated first so
that a revert surfaces as a decoded `ContractReverted` *before* anything is sent, and waited for.
"""

from __future__ import annotations

import contextlib
import copy
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
    BadFunctionCallOutput,
    ContractCustomError,
    ContractLogicError,
    ProviderConnectionError,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import TxParams, TxReceipt, Wei

from chain.compiler import Artifact, load_artifact
from chain.errors import (
    ChainError,
    ContractReverted,
    ErrorDecoder,
    NodeUnavailableError,
    RpcError,
    StateUnavailableError,
    TransactionFailed,
)
from chain.merkle import PairTree, unpack_pairs
from chain.units import ether

RECEIPT_TIMEOUT_S = 120.0
RPC_ATTEMPTS = 4
RPC_BACKOFF_S = 0.25
T = TypeVar("T")
RECEIPT_POLL_S = 0.02  # automining nodes answer within milliseconds; public chains just poll more
PRUNED_STATE_ATTEMPTS = 5
_PRUNED_STATE = re.compile(
    r"BlockOutOfRange|block height is \d+ but requested was|state.*(pruned|not available)", re.I
)


def is_pruned_state(error: Exception) -> bool:
    """Does a node's error say that the state of the block a read resolved to is gone?

    Anvil with `--prune-history` keeps only the newest state: a read that resolved `latest` to block
    N fails with `BlockOutOfRangeError` when N+1 is mined meanwhile.
    """
    return bool(_PRUNED_STATE.search(str(error)))


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
    """Transport failures and HTTP errors (a wrong path, a refusing proxy) -> `NodeUnavailableError`."""
    try:
        yield
    except (requests.ConnectionError, requests.Timeout, ProviderConnectionError) as error:
        raise NodeUnavailableError(f"cannot reach {where}: {error}") from error
    except requests.HTTPError as error:
        raise NodeUnavailableError(f"{where} answered HTTP, not JSON-RPC: {error}") from error


class OrganizationStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    EXITING = 2
    EXITED = 3


class RoundStatus(IntEnum):
    NONE = 0
    OPEN = 1
    FINALIZED = 2


class PairPhase(IntEnum):
    """`KnexaMarket.PairState`: where one pair stands (named apart from the `PairState` view)."""

    ASSIGNED = 0
    PUBLISHED = 1
    DISPUTED = 2
    SETTLED = 3


class SlashReason(IntEnum):
    """Why a stake was slashed (derived from the `PairSettled` outcome)."""

    NO_BUNDLE = 0
    NO_REPORT = 1
    DEFECTIVE = 2


class Outcome(IntEnum):
    """`KnexaMarket.Outcome`: how a pair was settled (in `GainReported` or `PairSettled`)."""

    REPORTED = 0
    NO_BUNDLE = 1
    NO_REPORT = 2
    DEFECTIVE = 3
    UNFOUNDED = 4
    UNRESOLVED = 5


def _snake(name: str) -> str:
    return "".join("_" + char.lower() if char.isupper() else char for char in name).lstrip("_")


@dataclass(frozen=True)
class MarketParameters:
    """Mirror of `OrganizationRegistry.MarketParameters` (wei, blocks, rounds, basis points).

    Converted to and from the contract by ABI field name (camelCase <-> snake_case), never by position.
    """

    min_stake: int
    exchange_fee: int
    exit_cooldown_blocks: int
    min_round_blocks: int
    dispute_bond: int
    max_round_blocks: int
    min_report_window_blocks: int
    verdict_window_blocks: int
    credit_window_rounds: int
    slash_bps: int
    reputation_weight_bps: int
    max_pairs_per_round: int
    teacher_capacity: int

    def as_abi(self, components: Sequence[str]) -> tuple[int, ...]:
        """The tuple in the order of the ABI's `components` (camelCase names)."""
        values = asdict(self)
        return tuple(values[_snake(name)] for name in components)

    @classmethod
    def from_abi(cls, named: dict[str, Any]) -> MarketParameters:
        return cls(**{_snake(name): int(value) for name, value in named.items()})


def parameter_components(abi: Sequence[Any]) -> list[str]:
    """Field names of the MarketParameters struct in ABI order (from the `parameters` view)."""
    for entry in abi:
        if entry.get("type") == "function" and entry.get("name") == "parameters":
            return [str(item["name"]) for item in entry["outputs"][0]["components"]]
    raise ChainError("the ABI has no parameters() view")


DEFAULT_PARAMETERS = MarketParameters(
    min_stake=ether(1),
    exchange_fee=ether("0.01"),
    exit_cooldown_blocks=10,
    min_round_blocks=2,
    dispute_bond=ether("0.05"),
    max_round_blocks=100_000,
    min_report_window_blocks=2,
    verdict_window_blocks=4,
    credit_window_rounds=10,
    slash_bps=1_000,
    reputation_weight_bps=2_000,
    max_pairs_per_round=1_024,
    teacher_capacity=4,
)


@dataclass(frozen=True)
class Organization:
    """An organization: the packed on-chain state plus what lives only in its events."""

    address: str
    status: OrganizationStatus
    registered_at_block: int
    exit_requested_at_block: int
    exit_available_at_block: int
    stake: int
    reputation: int
    credits: int
    name: str
    encryption_public_key: bytes
    profile_cid: bytes

    @property
    def profile_digest(self) -> bytes:
        return cid_digest(self.profile_cid) if self.profile_cid else bytes(32)


@dataclass(frozen=True)
class Round:
    round_id: int
    status: RoundStatus
    opened_at_block: int
    publish_deadline: int
    report_deadline: int
    verdict_deadline: int
    pair_count: int
    open_disputes: int
    pairs_root: bytes
    exchange_fee: int
    dispute_bond: int
    decision_cid: bytes
    policy_digest: bytes

    @property
    def deadline_block(self) -> int:
        """The last block anything of the round's exchange happens in (the report deadline)."""
        return self.report_deadline


@dataclass(frozen=True)
class PairState:
    """One pair of a round as the chain shows it: its members and its phase."""

    index: int
    teacher: str
    student: str
    phase: PairPhase

    @property
    def bundle_published(self) -> bool:
        """A bundle arrived, or the pair is settled (every pair of a finalized round is: see the events)."""
        return self.phase is not PairPhase.ASSIGNED

    @property
    def gain_reported(self) -> bool:
        return self.phase is PairPhase.SETTLED


@dataclass(frozen=True)
class TxResult:
    """What a mined transaction left behind."""

    transaction_hash: str
    block_number: int
    gas_used: int
    receipt: TxReceipt


def cid_digest(cid: bytes) -> bytes:
    """keccak256 of a CID's binary form."""
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
        self._trees: dict[int, PairTree] = {}
        with rpc_errors():
            self.chain_id = w3.eth.chain_id

    def with_account(self, account: LocalAccount) -> MarketClient:
        """The same market, acting as `account`: a shallow copy that shares the connection, the
        contract object and the rounds' pair trees read so far (public data, checked against the
        root on chain), so that many accounts driven from one process build these once."""
        clone = copy.copy(self)
        clone.account = account
        return clone

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
        """Run a view function at the latest block, with reverts decoded and node errors typed.

        A read never pins a block that may vanish: when the node has dropped the state the read
        resolved to (a pruning node mined meanwhile), it is retried at `latest`; after
        `PRUNED_STATE_ATTEMPTS` it raises `StateUnavailableError`. Any other JSON-RPC error
        becomes `RpcError`, so callers catch `ChainError` and nothing leaks through untyped.
        """
        for attempt in range(PRUNED_STATE_ATTEMPTS):
            try:
                with rpc_errors():
                    return function.call(block_identifier="latest")
            except (ContractCustomError, ContractLogicError) as error:
                raise self._decode(error) from None
            except BadFunctionCallOutput as error:
                raise RpcError(
                    f"the answer to a read cannot be decoded (no market at this address?): {error}"
                ) from error
            except Web3RPCError as error:
                if not is_pruned_state(error):
                    raise RpcError(f"the node refused a read: {error}") from error
                if attempt == PRUNED_STATE_ATTEMPTS - 1:
                    raise StateUnavailableError(
                        f"the node kept dropping the state of the block it read: {error}"
                    ) from error
                time.sleep(RPC_BACKOFF_S * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

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

        transaction: TxParams | None = None
        for attempt in range(PRUNED_STATE_ATTEMPTS):
            try:
                transaction = with_retries(build)
                break
            except (ContractCustomError, ContractLogicError) as error:
                raise self._decode(error) from None
            except Web3RPCError as error:
                # Gas estimation reads `latest`, whose state a pruning node (Anvil --prune-history)
                # drops when the next block is mined meanwhile: estimate again, as `call` reads again.
                if not is_pruned_state(error):
                    raise RpcError(f"the node refused to estimate a transaction: {error}") from error
                if attempt == PRUNED_STATE_ATTEMPTS - 1:
                    raise StateUnavailableError(
                        f"the node kept dropping the state to estimate on: {error}"
                    ) from error
                time.sleep(RPC_BACKOFF_S * (attempt + 1))
        assert transaction is not None
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

    # ------------------------------------------------------------------ ABI helpers

    def _outputs(self, function_name: str) -> list[dict[str, Any]]:
        for entry in self.artifact.abi:
            if entry.get("type") == "function" and entry.get("name") == function_name:
                outputs: list[dict[str, Any]] = entry["outputs"]
                return outputs
        raise ChainError(f"the ABI has no function {function_name}")

    def _inputs(self, function_name: str) -> list[dict[str, Any]]:
        for entry in self.artifact.abi:
            if entry.get("type") == "function" and entry.get("name") == function_name:
                inputs: list[dict[str, Any]] = entry["inputs"]
                return inputs
        raise ChainError(f"the ABI has no function {function_name}")

    def call_struct(self, function: ContractFunction, function_name: str) -> dict[str, Any]:
        """Call a view that returns one struct; its fields by ABI name (camelCase)."""
        values = self.call(function)
        components = self._outputs(function_name)[0]["components"]
        return {component["name"]: value for component, value in zip(components, values, strict=True)}

    def _event_logs(self, event_name: str, topics: Sequence[bytes | None]) -> list[dict[str, Any]]:
        """Decoded logs of `event_name` whose indexed arguments match `topics` (None: any)."""
        event = self.contract.events[event_name]()
        signature = next(
            entry
            for entry in self.artifact.abi
            if entry.get("type") == "event" and entry.get("name") == event_name
        )
        types = ",".join(item["type"] for item in signature["inputs"])
        topic0 = Web3.keccak(text=f"{event_name}({types})")
        filter_topics: list[Any] = [topic0.to_0x_hex()] + [
            None if topic is None else "0x" + topic.rjust(32, b"\0").hex() for topic in topics
        ]
        with rpc_errors():
            logs = self.w3.eth.get_logs(
                {"address": self.address, "fromBlock": 0, "toBlock": "latest", "topics": filter_topics}
            )
        return [dict(event.process_log(log)["args"]) for log in logs]

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
        components = [item["name"] for item in self._inputs("setParameters")[0]["components"]]
        return self.transact(self.contract.functions.setParameters(parameters.as_abi(components)))

    def grant_matchmaker(self, address: str) -> TxResult:
        """Grant MATCHMAKER_ROLE and ARBITER_ROLE (the matchmaker also rules on disputes)."""
        checksum = Web3.to_checksum_address(address)
        result = self.transact(self.contract.functions.grantRole(self.matchmaker_role(), checksum))
        self.transact(self.contract.functions.grantRole(self.arbiter_role(), checksum))
        return result

    # ------------------------------------------------------------------ rounds

    def open_round(
        self,
        round_id: int,
        decision_cid: bytes,
        policy_digest: bytes,
        pairs: Sequence[tuple[str, str]],
        deadline_block: int | None = None,
        *,
        publish_deadline: int | None = None,
        report_deadline: int | None = None,
    ) -> TxResult:
        """Open round `round_id` with directed `pairs` of (teacher, student) addresses.

        Give `publish_deadline` and `report_deadline`, or only `deadline_block` (the report deadline;
        the publish deadline is then `minReportWindowBlocks` before it).
        """
        if report_deadline is None:
            report_deadline = deadline_block
        if report_deadline is None:
            raise ChainError("open_round needs a report deadline")
        if publish_deadline is None:
            publish_deadline = report_deadline - self.parameters().min_report_window_blocks
        tree = PairTree.build(round_id, pairs)
        result = self.transact(
            self.contract.functions.openRound(
                round_id, decision_cid, policy_digest, tree.packed(), publish_deadline, report_deadline
            )
        )
        self._trees[round_id] = tree
        return result

    def pair_tree(self, round_id: int) -> PairTree:
        """The pairs of round `round_id` and their Merkle tree, from its `RoundOpened` event.

        A cached tree is used only while the contract still commits to its root: after a chain
        reset (or a reorg) round `round_id` can be another round with other pairs, and a proof from
        the old tree would be refused (`NotInRound`) forever."""
        cached = self._trees.get(round_id)
        if cached is not None:
            values = self.call_struct(self.contract.functions.getRound(round_id), "getRound")
            if bytes(values["pairsRoot"]) != cached.root:
                del self._trees[round_id]
        if round_id not in self._trees:
            logs = self._event_logs("RoundOpened", [round_id.to_bytes(32, "big")])
            if not logs:
                raise ChainError(f"round {round_id} was never opened")
            tree = PairTree.build(round_id, unpack_pairs(bytes(logs[0]["pairs"])))
            if tree.root != bytes(logs[0]["pairsRoot"]):
                raise ChainError(f"round {round_id}: the pairs do not hash to the committed root")
            self._trees[round_id] = tree
        return self._trees[round_id]

    def _pair_index(self, round_id: int, teacher: str, student: str) -> int:
        tree = self.pair_tree(round_id)
        key = (Web3.to_checksum_address(teacher), Web3.to_checksum_address(student))
        for index, pair in enumerate(tree.pairs):
            if pair == key:
                return index
        raise ContractReverted(
            "NotInRound", {"roundId": round_id, "pairIndex": -1, "teacher": key[0], "student": key[1]}
        )

    def publish_bundle(self, round_id: int, student: str, bundle_cid: bytes) -> TxResult:
        """As the teacher of `student`, publish the bundle's CID (index and proof found here)."""
        teacher = self._require_account().address
        index = self._pair_index(round_id, teacher, student)
        return self.transact(
            self.contract.functions.publishBundle(
                round_id,
                index,
                Web3.to_checksum_address(student),
                bundle_cid,
                self.pair_tree(round_id).proof(index),
            )
        )

    def report_gain(self, round_id: int, teacher: str, gain_wad: int, adapter_cid: bytes) -> TxResult:
        """As the student of `teacher`, report the gain; settles the pair."""
        student = self._require_account().address
        index = self._pair_index(round_id, teacher, student)
        return self.transact(
            self.contract.functions.reportGain(
                round_id,
                index,
                Web3.to_checksum_address(teacher),
                gain_wad,
                adapter_cid,
                self.pair_tree(round_id).proof(index),
            )
        )

    def dispute_bundle(self, round_id: int, teacher: str, evidence_cid: bytes) -> TxResult:
        """As the student of `teacher`, dispute its bundle with the evidence document at `evidence_cid`."""
        student = self._require_account().address
        index = self._pair_index(round_id, teacher, student)
        return self.transact(
            self.contract.functions.disputeBundle(
                round_id,
                index,
                Web3.to_checksum_address(teacher),
                evidence_cid,
                self.pair_tree(round_id).proof(index),
            )
        )

    def resolve_dispute(
        self, round_id: int, teacher: str, student: str, defective: bool, verdict_cid: bytes
    ) -> TxResult:
        """As the arbiter, rule on the dispute of the pair (teacher, student)."""
        index = self._pair_index(round_id, teacher, student)
        return self.transact(
            self.contract.functions.resolveDispute(
                round_id,
                index,
                Web3.to_checksum_address(teacher),
                Web3.to_checksum_address(student),
                defective,
                verdict_cid,
                self.pair_tree(round_id).proof(index),
            )
        )

    def settle_round(self, round_id: int) -> TxResult:
        """Settle what is left of round `round_id` and close it (anyone, after its deadlines).

        Sends the pair list only when a pair is left to settle: once the deadlines have passed no
        pair changes state any more, and with every pair settled the contract reads no list.
        """
        self._require_account()
        pending = self.unsettled_pairs(round_id)
        packed = self.pair_tree(round_id).packed() if pending else b""
        return self.transact(self.contract.functions.settleRound(round_id, packed))

    def finalize_round(self, round_id: int) -> TxResult:
        """Alias of `settle_round`."""
        return self.settle_round(round_id)

    # ------------------------------------------------------------------ views

    def matchmaker_role(self) -> bytes:
        role: bytes = self.call(self.contract.functions.MATCHMAKER_ROLE())
        return role

    def arbiter_role(self) -> bytes:
        role: bytes = self.call(self.contract.functions.ARBITER_ROLE())
        return role

    def has_role(self, role: bytes, address: str) -> bool:
        answer: bool = self.call(self.contract.functions.hasRole(role, Web3.to_checksum_address(address)))
        return answer

    def parameters(self) -> MarketParameters:
        return MarketParameters.from_abi(self.call_struct(self.contract.functions.parameters(), "parameters"))

    def organization(self, address: str) -> Organization:
        """The on-chain state of `address`, with name, key and profile CID from its events."""
        checksum = Web3.to_checksum_address(address)
        values = self.call_struct(self.contract.functions.organization(checksum), "organization")
        topic = bytes.fromhex(checksum[2:])
        registered = self._event_logs("OrganizationRegistered", [topic]) if values["status"] else []
        name, key, profile = "", b"", b""
        if registered:
            name = str(registered[0]["name"])
            key = bytes(registered[0]["encryptionPublicKey"])
            profile = bytes(registered[0]["profileCid"])
            updates = self._event_logs("ProfileUpdated", [topic])
            if updates:
                profile = bytes(updates[-1]["profileCid"])
        return Organization(
            address=checksum,
            status=OrganizationStatus(values["status"]),
            registered_at_block=int(values["registeredAtBlock"]),
            exit_requested_at_block=int(values["exitRequestedAtBlock"]),
            exit_available_at_block=int(values["exitAvailableAtBlock"]),
            stake=int(values["stake"]),
            reputation=int(values["reputation"]),
            credits=int(values["credits"]),
            name=name,
            encryption_public_key=key,
            profile_cid=profile,
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
        values = self.call_struct(self.contract.functions.getRound(round_id), "getRound")
        decision_cid, policy_digest = b"", bytes(32)
        if values["status"]:
            logs = self._event_logs("RoundOpened", [round_id.to_bytes(32, "big")])
            if logs:
                decision_cid = bytes(logs[0]["decisionCid"])
                policy_digest = bytes(logs[0]["policyDigest"])
        return Round(
            round_id=round_id,
            status=RoundStatus(values["status"]),
            opened_at_block=int(values["openedAtBlock"]),
            publish_deadline=int(values["publishDeadline"]),
            report_deadline=int(values["reportDeadline"]),
            verdict_deadline=int(values["verdictDeadline"]),
            pair_count=int(values["pairCount"]),
            open_disputes=int(values["openDisputes"]),
            pairs_root=bytes(values["pairsRoot"]),
            exchange_fee=int(values["exchangeFee"]),
            dispute_bond=int(values["disputeBond"]),
            decision_cid=decision_cid,
            policy_digest=policy_digest,
        )

    def pair_phase(self, round_id: int, index: int) -> PairPhase:
        return PairPhase(self.call(self.contract.functions.pairState(round_id, index)))

    def pairs(self, round_id: int) -> list[PairState]:
        tree = self.pair_tree(round_id)
        return [
            PairState(index=index, teacher=teacher, student=student, phase=self.pair_phase(round_id, index))
            for index, (teacher, student) in enumerate(tree.pairs)
        ]

    def reported_gain(self, round_id: int, student: str) -> int | None:
        """The gain (WAD) `student` reported in round `round_id` (events only), or None."""
        topic = bytes.fromhex(Web3.to_checksum_address(student)[2:])
        logs = self._event_logs("GainReported", [round_id.to_bytes(32, "big"), None, topic])
        return int(logs[0]["gain"]) if logs else None

    def unsettled_pairs(self, round_id: int) -> int:
        """Pairs of round `round_id` not settled yet (0 once it is finalized, or for an unknown round)."""
        value: int = self.call(self.contract.functions.unsettledPairs(round_id))
        return value

    def pending_withdrawal(self, address: str) -> int:
        value: int = self.call(self.contract.functions.pendingWithdrawal(Web3.to_checksum_address(address)))
        return value

    def escrowed_fees(self) -> int:
        value: int = self.call(self.contract.functions.escrowedFees())
        return value

    def held_bonds(self) -> int:
        value: int = self.call(self.contract.functions.heldBonds())
        return value

    def contract_balance(self) -> int:
        with rpc_errors():
            return self.w3.eth.get_balance(self.address)

    def block_number(self) -> int:
        with rpc_errors():
            return self.w3.eth.block_number
